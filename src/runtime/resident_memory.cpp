// Resident memory from /proc: see resident_memory.hpp.
#include "runtime/resident_memory.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace ml::runtime {

std::optional<ResidentMemory> resident_memory() {
  std::ifstream status("/proc/self/status");
  if (!status) return std::nullopt;
  ResidentMemory m;
  bool rss = false, hwm = false;
  for (std::string line; std::getline(status, line);) {
    // "VmRSS:	  123456 kB"
    std::istringstream fields(line);
    std::string key;
    std::int64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "VmRSS:") m.current_bytes = kib * 1024, rss = true;
    if (key == "VmHWM:") m.peak_bytes = kib * 1024, hwm = true;
  }
  if (!rss || !hwm) return std::nullopt;
  return m;
}

bool reset_peak_resident_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

namespace {

// The first number in `path` (a cgroup file such as memory.max: "max" or bytes).
std::optional<std::int64_t> number_in(const std::string& path) {
  std::ifstream in(path);
  std::int64_t value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::int64_t> available_memory_bytes() {
  std::optional<std::int64_t> available;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    std::int64_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") available = kib * 1024;
  }
  // "max" (no limit) does not read as a number and leaves MemAvailable alone.
  const auto limit = number_in("/sys/fs/cgroup/memory.max");
  const auto used = number_in("/sys/fs/cgroup/memory.current");
  if (limit && used) {
    const std::int64_t room = std::max<std::int64_t>(0, *limit - *used);
    if (!available || room < *available) available = room;
  }
  return available;
}

}  // namespace ml::runtime
