// Device and thread selection for torch work. "auto" picks CUDA when present; asking for CUDA
// where there is none is a DeviceError, never a silent fall-back to the CPU. One thread count
// governs torch's intra-op pool, OpenMP and OpenBLAS together; it is passed explicitly, never
// kept here.
#pragma once

#include <string>

#include "config/choices.hpp"

namespace c10 {
struct Device;  // torch::Device; this header stays free of torch for the CLI
}  // namespace c10

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

// The torch device for a run.device / --device value (cpu, cuda, cuda:N, auto): what every
// command computes on. Same errors as resolve_device.
c10::Device torch_device(const config::DeviceSpec& requested);
c10::Device torch_device(const std::string& requested);  // parse_device, then the above

// The threads a command computes with, by precedence: `requested` (run.threads / --threads) when
// > 0; else OMP_NUM_THREADS, else OPENBLAS_NUM_THREADS, when set by the user to a positive
// integer; else all cores. CSV parsing follows the same count (data::parse_threads).
int resolve_threads(int requested);

// Sizes torch's intra-op pool, OpenMP and OpenBLAS to resolve_threads(threads) and returns it.
// An explicit count (> 0) is exported as OMP_NUM_THREADS / OPENBLAS_NUM_THREADS for pools that
// start later; with 0 the variables the user set are left as they are.
int configure_threads(int threads);

// For meta-training, adaptation, prediction and evaluation: configure_threads(), and freed
// memory stays with the process instead of going back to the system, because a meta-step
// allocates and frees the same large tensors every iteration and returning them costs a page
// fault per 4 KiB each time (a quarter of W2's time in docs/BENCHMARKS.md).
int configure_compute(int threads);

// "LibTorch 1.13.1, CUDA: not available" for --version.
std::string runtime_description();

}  // namespace ml::runtime
