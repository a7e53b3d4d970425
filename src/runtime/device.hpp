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

// threads == 0: all cores. Sets torch intra-op threads and, before the first BLAS call,
// OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (which OpenBLAS reads when its pool starts).
void configure_threads(int threads);

// "LibTorch 1.13.1, CUDA: not available" for --version.
std::string runtime_description();

}  // namespace ml::runtime
