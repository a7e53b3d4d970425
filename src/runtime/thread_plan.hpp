// How a command spreads its work over CPU threads. The products of few-shot models are small
// (a task's 10 x 128 layer input is multiplied before a second thread would have started), so
// threads inside one product only add start-up and waiting; independent units of work (the
// tasks of a meta-batch, the episodes of an evaluation, the tasks of `adapt --all-new`)
// computed side by side, one thread each, do scale. A plan is therefore either task workers
// that are single-threaded inside, or one worker whose large products use intra-op threads;
// never both at once (OpenMP or OpenBLAS teams inside several workers would oversubscribe the
// cores and spin against each other), and never more threads than the cores this process may
// use. This header is torch-free: the choice is plain arithmetic on its inputs.
#pragma once

#include <string>

namespace ml::runtime {

// Multiply-adds of one matrix product at which intra-op threads start to pay: about a
// millisecond of one core's arithmetic, against the tens of microseconds an OpenMP team or an
// OpenBLAS split costs to start and join. Below it a product stays on one thread.
constexpr double kIntraOpMinMultiplyAdds = 16.0 * 1024 * 1024;

// The parallel work of one command.
struct WorkShape {
  int units = 1;               // independent units that may run side by side (>= 1)
  double largest_product = 0;  // multiply-adds of the largest matrix product in one unit
};

// The threads a command may use and where that number came from.
struct ThreadBudget {
  int threads = 1;
  std::string source;  // "--threads / run.threads", "OMP_NUM_THREADS", "2 usable cores (...)"
  // Neither --threads / run.threads nor a thread variable set it: the usable cores, which a
  // command may measure before it spends them (the trainer does).
  bool automatic = false;
};

struct ThreadPlan {
  int workers = 1;   // units computed side by side, one thread each (the caller is one of them)
  int intra_op = 1;  // torch, OpenMP and OpenBLAS threads inside one product (> 1 only alone)
  ThreadBudget budget;
  // "2 task workers, 1 thread each (budget: 2 usable cores ...; 16 units)": the info line.
  std::string describe(const std::string& units_name) const;
};

// The plan for `budget` threads: as many workers as there are units, up to the budget; a lone
// worker (one unit, or a budget of one) takes the whole budget as intra-op threads only when
// its largest product reaches kIntraOpMinMultiplyAdds. Never more threads than the budget.
ThreadPlan plan_threads(const ThreadBudget& budget, const WorkShape& work);

// Cores of a cgroup CPU quota, rounded to the nearest whole core and at least 1, or 0 for no
// quota: cgroup v2's cpu.max ("max 100000": 0; "150000 100000", 1.5 cores: 2; text that is no
// quota: 0).
int quota_cores_from_cpu_max(const std::string& cpu_max);
// The same for cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us (-1 quota: none, 0).
int quota_cores_from_cfs(const std::string& quota_us, const std::string& period_us);

// The cores this process may run on: the CPUs of its affinity mask (sched_getaffinity, what
// taskset and container cpusets set), capped by a cgroup CPU quota (docker --cpus) of its own
// cgroup or a parent's. `why` says which limit applied ("2 usable cores (CPU affinity)").
ThreadBudget usable_cores();

}  // namespace ml::runtime
