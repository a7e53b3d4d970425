// Device and thread selection for torch work. "auto" picks CUDA when present; asking for CUDA
// where there is none is a DeviceError, never a silent fall-back to the CPU. One thread budget
// (run.threads / --threads) bounds torch's intra-op pool, OpenMP, OpenBLAS and the task
// workers together (thread_plan.hpp says how it is spread); it is passed explicitly, never
// kept here.
#pragma once

#include <string>

#include "config/choices.hpp"
#include "runtime/thread_plan.hpp"

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

// The thread budget of a command, by precedence: `requested` (run.threads / --threads) when
// > 0; else OMP_NUM_THREADS, else OPENBLAS_NUM_THREADS, when set by the user to a positive
// integer (one above config::kMaxThreads is a UsageError, as run.threads above it is a
// config error); else the cores this process may use (usable_cores(): CPU affinity and cgroup
// quota, not merely the cores the machine has). CSV parsing uses all of it
// (data::parse_threads); torch work spreads it by a ThreadPlan (apply_thread_plan).
ThreadBudget thread_budget(int requested);
int resolve_threads(int requested);  // thread_budget(requested).threads

// Sizes torch's intra-op pool, OpenMP and OpenBLAS to `threads` (>= 1).
void set_intra_op_threads(int threads);

// For meta-training, adaptation, prediction and evaluation, before their torch work: freed
// memory stays with the process instead of going back to the system, because a meta-step
// allocates and frees the same large tensors every iteration and returning them costs a page
// fault per 4 KiB each time (a quarter of W2's time in docs/BENCHMARKS.md); and products run on
// one thread until apply_thread_plan() says otherwise. Returns thread_budget(threads).
ThreadBudget configure_compute(int threads);

// plan_threads(budget, work) with torch, OpenMP and OpenBLAS sized to the plan's intra-op
// threads, logged at info level: "threads: 2 workers over the meta-batch's tasks, 1 thread each
// (budget 2: 2 usable cores (all cores))". `units_name` names work.units in that line.
ThreadPlan apply_thread_plan(const ThreadBudget& budget, const WorkShape& work,
                             const std::string& units_name);

// "LibTorch 1.13.1, CUDA: not available" for --version.
std::string runtime_description();

}  // namespace ml::runtime
