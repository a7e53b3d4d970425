// Device and thread selection: see device.hpp.
#include "runtime/device.hpp"

#include <torch/torch.h>

#include <malloc.h>

#include <cstdlib>
#include <thread>

#include "util/errors.hpp"
#include "util/strings.hpp"

// OpenBLAS's own thread control. Declared here: the cblas.h that declares it is whichever BLAS
// Debian's alternatives point at, which need not be OpenBLAS's.
extern "C" void openblas_set_num_threads(int threads);

namespace ml::runtime {

config::DeviceSpec parse_device(const std::string& text) {
  auto spec = config::parse_device_spec(text);
  if (!spec) throw DeviceError("device \"" + text + "\": expected cpu, cuda, cuda:N or auto");
  return *spec;
}

DeviceChoice resolve_device(const std::string& requested) {
  return resolve_device(parse_device(requested));
}

DeviceChoice resolve_device(const config::DeviceSpec& requested) {
  const bool available = torch::cuda::is_available();
  const int count = available ? static_cast<int>(torch::cuda::device_count()) : 0;
  const std::string name = requested.name();
  DeviceChoice choice;
  switch (requested.kind) {
    case config::DeviceKind::kCpu:
      return choice;
    case config::DeviceKind::kAuto:
      choice.cuda = available;
      return choice;
    case config::DeviceKind::kCuda:
      break;
  }
  if (!available)
    throw DeviceError("device \"" + name +
                      "\": CUDA is not available here (no GPU visible, or this LibTorch was "
                      "built without CUDA); use \"cpu\" or \"auto\"");
  choice.cuda = true;
  if (requested.index >= 0) {
    choice.index = requested.index;
    if (choice.index >= count)
      throw DeviceError("device \"" + name + "\": only " + std::to_string(count) +
                        " CUDA device(s) visible (cuda:0 .. cuda:" + std::to_string(count - 1) +
                        ")");
  }
  return choice;
}

c10::Device torch_device(const std::string& requested) {
  return torch_device(parse_device(requested));
}

c10::Device torch_device(const config::DeviceSpec& requested) {
  const DeviceChoice choice = resolve_device(requested);
  return choice.cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(choice.index))
                     : torch::Device(torch::kCPU);
}

namespace {

int all_cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// A thread-count environment variable the user set to a positive integer, else 0.
int threads_from_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return 0;
  const auto n = parse_int(value);
  return n && *n > 0 && *n <= 4096 ? static_cast<int>(*n) : 0;
}

}  // namespace

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"})
    if (const int n = threads_from_env(name)) return n;
  return all_cores();
}

int configure_threads(int threads) {
  const int n = resolve_threads(threads);
  const std::string value = std::to_string(n);
  // OpenBLAS and OpenMP read these when their pools start; torch::set_num_threads covers the
  // intra-op pool and OpenMP's already-started one. Only an explicit setting replaces the
  // user's own.
  const int overwrite = threads > 0 ? 1 : 0;
  setenv("OMP_NUM_THREADS", value.c_str(), overwrite);
  setenv("OPENBLAS_NUM_THREADS", value.c_str(), overwrite);
  torch::set_num_threads(n);
  // OpenBLAS started its own pthread pool when it was loaded, before any of the above; only
  // its own call resizes it. The build links OpenBLAS (models/batched_matmul.cpp calls it).
  const int blas = threads > 0 ? n : threads_from_env("OPENBLAS_NUM_THREADS");
  openblas_set_num_threads(blas > 0 ? blas : n);
  return n;
}

int configure_compute(int threads) {
  const int n = configure_threads(threads);
  // glibc otherwise serves blocks above a (self-adjusting) size with fresh mmap()s and trims
  // freed memory at the top of the heap: both hand pages back that the next step faults in.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
  return n;
}

std::string runtime_description() {
  std::string cuda = torch::cuda::is_available()
                         ? std::to_string(torch::cuda::device_count()) + " CUDA device(s)"
                         : "CUDA: not available";
  return std::string("LibTorch ") + TORCH_VERSION + ", " + cuda;
}

}  // namespace ml::runtime
