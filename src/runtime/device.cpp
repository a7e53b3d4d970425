// Device and thread selection: see device.hpp.
#include "runtime/device.hpp"

#include <torch/torch.h>

#include <malloc.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "config/config.hpp"
#include "runtime/blas_core.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

// OpenBLAS's own thread control. Declared here: the cblas.h that declares it is whichever BLAS
// Debian's alternatives point at, which need not be OpenBLAS's. Weak, so that a build without
// OpenBLAS (ML_TORCH_GEMM) still links; there it is null and LibTorch's own count rules.
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

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

// A thread-count environment variable the user set to a positive integer, else 0 (unset, or
// not a count: OpenMP also reads lists such as "4,2", which are not ours to judge). A count
// above config::kMaxThreads is refused as run.threads and --threads refuse it, in their words:
// falling back to another source would spend a budget the user did not ask for.
int threads_from_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return 0;
  const auto n = parse_int(value);
  if (!n || *n <= 0) return 0;
  if (*n > config::kMaxThreads)
    throw UsageError(std::string(name) + " = " + std::to_string(*n) + ": must be from 1 to " +
                     std::to_string(config::kMaxThreads) +
                     " (the bound of run.threads and --threads); lower it, or give --threads");
  return static_cast<int>(*n);
}

}  // namespace

ThreadBudget thread_budget(int requested) {
  if (requested > 0) return {requested, "--threads / run.threads"};
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"})
    if (const int n = threads_from_env(name)) return {n, name};
  return usable_cores();
}

int resolve_threads(int requested) {
  return thread_budget(requested).threads;
}

void set_intra_op_threads(int threads) {
  const int n = std::max(1, threads);
  // torch::set_num_threads sizes the intra-op pool and this thread's OpenMP teams; threads
  // started later (the task workers) take torch's count when they first run a parallel loop.
  torch::set_num_threads(n);
  // OpenBLAS started its own pthread pool when it was loaded; only its own call resizes it.
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

ThreadBudget configure_compute(int threads) {
  const ThreadBudget budget = thread_budget(threads);
  set_intra_op_threads(1);
  // glibc otherwise serves blocks above a (self-adjusting) size with fresh mmap()s and trims
  // freed memory at the top of the heap: both hand pages back that the next step faults in.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
  return budget;
}

ThreadPlan apply_thread_plan(const ThreadBudget& budget, const WorkShape& work,
                             const std::string& units_name) {
  const ThreadPlan plan = plan_threads(budget, work);
  set_intra_op_threads(plan.intra_op);
  spdlog::info("threads: {}", plan.describe(units_name));
  return plan;
}

std::string runtime_description() {
  std::string cuda = torch::cuda::is_available()
                         ? std::to_string(torch::cuda::device_count()) + " CUDA device(s)"
                         : "CUDA: not available";
  return std::string("LibTorch ") + TORCH_VERSION + ", " + cuda + ", " + blas_core_description();
}

}  // namespace ml::runtime
