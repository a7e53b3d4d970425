// Thread plans and the cores a process may use: see thread_plan.hpp.
#include "runtime/thread_plan.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "util/strings.hpp"

namespace ml::runtime {

namespace fs = std::filesystem;

ThreadPlan plan_threads(const ThreadBudget& budget, const WorkShape& work) {
  ThreadPlan plan;
  plan.budget = budget;
  const int threads = std::max(1, budget.threads);
  plan.workers = std::max(1, std::min(threads, work.units));
  if (plan.workers == 1 && work.largest_product >= kIntraOpMinMultiplyAdds) plan.intra_op = threads;
  return plan;
}

std::string ThreadPlan::describe(const std::string& units_name) const {
  std::string text;
  if (workers > 1)
    text = std::to_string(workers) + " workers over the " + units_name + ", 1 thread each";
  else if (intra_op > 1)
    text = "1 worker with " + std::to_string(intra_op) + " threads inside its products (large " +
           "matrices)";
  else
    text = "1 thread";
  return text + " (budget " + std::to_string(budget.threads) + ": " + budget.source + ")";
}

namespace {

int rounded_cores(double quota, double period) {
  if (!(quota > 0) || !(period > 0)) return 0;
  return std::max(1, static_cast<int>(std::lround(quota / period)));
}

std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The smallest quota (0: none) of the cgroup at `relative` under `root` and of its parents up
// to `root`, read by `quota_of`: a limit set on a parent holds for every cgroup below it.
template <typename QuotaOf>
int smallest_quota(const fs::path& root, const fs::path& relative, QuotaOf quota_of) {
  int smallest = 0;
  fs::path dir = root;
  auto keep = [&] {
    const int q = quota_of(dir);
    if (q > 0 && (smallest == 0 || q < smallest)) smallest = q;
  };
  keep();
  for (const fs::path& part : relative) {
    if (part.empty() || part == "." || part == "..") continue;
    dir /= part;
    keep();
  }
  return smallest;
}

// The quota of this process's cgroup (v2, or v1's cpu controller), 0 when there is none.
int cgroup_quota_cores() {
  std::ifstream in("/proc/self/cgroup");
  int smallest = 0;
  auto keep = [&](int q) {
    if (q > 0 && (smallest == 0 || q < smallest)) smallest = q;
  };
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    const fs::path relative = fs::path(path).relative_path();
    if (controllers.empty()) {  // v2, mounted alone or beside v1 ("unified")
      for (const fs::path& root : {fs::path("/sys/fs/cgroup"), fs::path("/sys/fs/cgroup/unified")})
        keep(smallest_quota(root, relative, [](const fs::path& dir) {
          return quota_cores_from_cpu_max(read_first_line(dir / "cpu.max"));
        }));
      continue;
    }
    std::stringstream names(controllers);
    bool cpu = false;
    for (std::string name; std::getline(names, name, ',');) cpu = cpu || name == "cpu";
    if (!cpu) continue;
    for (const fs::path& root :
         {fs::path("/sys/fs/cgroup/cpu"), fs::path("/sys/fs/cgroup/cpu,cpuacct"),
          fs::path("/sys/fs/cgroup/" + controllers)})
      keep(smallest_quota(root, relative, [](const fs::path& dir) {
        return quota_cores_from_cfs(read_first_line(dir / "cpu.cfs_quota_us"),
                                    read_first_line(dir / "cpu.cfs_period_us"));
      }));
  }
  return smallest;
}

}  // namespace

int quota_cores_from_cpu_max(const std::string& cpu_max) {
  std::stringstream in(cpu_max);
  std::string quota, period;
  if (!(in >> quota >> period) || quota == "max") return 0;
  const auto q = parse_double(quota), p = parse_double(period);
  return q && p ? rounded_cores(*q, *p) : 0;
}

int quota_cores_from_cfs(const std::string& quota_us, const std::string& period_us) {
  const auto q = parse_double(quota_us), p = parse_double(period_us);
  return q && p ? rounded_cores(*q, *p) : 0;
}

ThreadBudget usable_cores() {
  ThreadBudget b;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string why = "all cores";
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int allowed = CPU_COUNT(&set);
    if (allowed > 0 && allowed < cores) why = "CPU affinity";
    if (allowed > 0) cores = allowed;
  }
  if (const int quota = cgroup_quota_cores(); quota > 0 && quota < cores) {
    cores = quota;
    why = "cgroup CPU quota";
  }
  b.threads = cores;
  b.source = count_of(cores, "usable core") + " (" + why + ")";
  b.automatic = true;
  return b;
}

}  // namespace ml::runtime
