// Device and thread selection for torch work. "auto" picks CUDA when present; asking for CUDA
// where there is none is a DeviceError, never a silent fall-back to the CPU. One thread setting
// governs torch's intra-op pool, OpenMP and OpenBLAS together.
#pragma once

#include <string>

#include "config/choices.hpp"

namespace ml::runtime {

struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// A --device value; throws DeviceError unless it is cpu, cuda, cuda:N or auto.
config::DeviceSpec parse_device(const std::string& text);

// Throws DeviceError naming the request and what is available.
DeviceChoice resolve_device(const config::DeviceSpec& requested);
DeviceChoice resolve_device(const std::string& requested);  // parse_device, then the above

// Threads (0: all cores) for torch's intra-op pool, OpenMP, OpenBLAS and CSV parsing together.
void configure_threads(int threads);
// The threads configure_threads() set, all cores before it is called: what parsing uses.
int compute_threads();

// For meta-training, adaptation, prediction and evaluation: configure_threads(), and freed
// memory stays with the process instead of going back to the system, because a meta-step
// allocates and frees the same large tensors every iteration and returning them costs a page
// fault per 4 KiB each time (a quarter of W2's time in docs/BENCHMARKS.md).
void configure_compute(int threads);

// "LibTorch 1.13.1, CUDA: not available" for --version.
std::string runtime_description();

}  // namespace ml::runtime
