// Draws support/query episodes from a task. Each episode is a pure function of (seed, task
// name, episode index), so the same config gives the same episodes in any order, on any run.
// Binary supports are stratified as task.stratify says and every binary query holds both
// classes when it can; multiclass episodes are N-way K-shot with labels remapped to 0..N-1.
// Support and query rows come in a random order (seeded like the rest of the episode), never in
// the log's: nothing downstream, a model or a metric's tie-breaking, may see the log's order.
// With support config::kSupportAll ("all") the query is drawn as usual and every other example
// of the task (of the episode's classes, for multiclass) is the support.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tasks/task_set.hpp"

namespace ml::tasks {

struct Episode {
  const Task* task = nullptr;
  std::vector<std::size_t> support, query;  // indices into task->examples
  std::vector<std::int32_t> classes;        // multiclass: episode label i is global class i
};

struct EpisodeShape {
  int support = 10;  // K, or config::kSupportAll
  int query = 15;
  config::Stratify stratify = config::Stratify::kBalanced;
  int ways = 5;  // multiclass only
};

class EpisodeSampler {
 public:
  EpisodeSampler(LabelKind kind, EpisodeShape shape, std::uint64_t seed);

  // Why `task` cannot give an episode of this shape (cause kNone and "" when it can).
  DropReason diagnose(const Task& task) const;
  // diagnose(task).text: "" when `task` can give an episode of this shape.
  std::string check(const Task& task) const { return diagnose(task).text; }
  // Throws DataError when check() fails.
  Episode sample(const Task& task, std::uint64_t episode_index) const;

  // Positives and negatives in a binary support set of this shape for a task with the given
  // label counts.
  std::pair<int, int> binary_support_split(std::int64_t positives, std::int64_t negatives) const;

  const EpisodeShape& shape() const { return shape_; }

 private:
  LabelKind kind_;
  EpisodeShape shape_;
  std::uint64_t seed_;
};

EpisodeShape episode_shape(const config::TaskConfig& task);

}  // namespace ml::tasks
