// Device and thread selection for torch work. "auto" picks CUDA when present; asking for CUDA
// where there is none is a DeviceError, never a silent fall-back to the CPU. One thread setting
// governs torch's intra-op pool, OpenMP and OpenBLAS together.
#pragma once

#include <string>

namespace ml::runtime {

struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// Throws DeviceError naming the request and what is available.
DeviceChoice resolve_device(const std::string& requested);

// For meta-training, adaptation, prediction and evaluation. Threads (0: all cores): torch's
// intra-op pool, OpenMP and OpenBLAS together. Memory: freed blocks stay with the process
// instead of going back to the system, because a meta-step allocates and frees the same
// large tensors every iteration and returning them costs a page fault per 4 KiB each time
// (a quarter of W2's time in docs/BENCHMARKS.md).
void configure_compute(int threads);

// "LibTorch 1.13.1, CUDA: not available" for --version.
std::string runtime_description();

}  // namespace ml::runtime
