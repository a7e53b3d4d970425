// The process's resident memory as Linux reports it (/proc/self/status VmRSS and VmHWM), and a
// way to measure the peak of one stretch of work: reset the high-water mark (writing 5 to
// /proc/self/clear_refs, Linux 4.0 and later; proc(5)), do the work, read the mark. What
// `train` prints for one meta-step: the memory a model's meta-gradient takes (activations,
// the inner loop's graph) is what decides whether second order fits, against what the machine
// still has available.
#pragma once

#include <cstdint>
#include <optional>

namespace ml::runtime {

struct ResidentMemory {
  std::int64_t current_bytes = 0;  // VmRSS
  std::int64_t peak_bytes = 0;     // VmHWM: the most since start or the last reset
};

// nullopt where /proc/self/status cannot be read (not Linux).
std::optional<ResidentMemory> resident_memory();
// Resets the high-water mark to the current resident size; false where the kernel refuses.
bool reset_peak_resident_memory();
// The memory this process could still take: /proc/meminfo's MemAvailable, or the room left
// under its cgroup v2 limit (/sys/fs/cgroup/memory.max minus memory.current) when that is
// smaller; nullopt when neither can be read.
std::optional<std::int64_t> available_memory_bytes();

}  // namespace ml::runtime
