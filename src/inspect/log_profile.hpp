// What the tool will see in a purchase log before any training: rows read and rejected, ids,
// task sizes, which tasks qualify for the configured support/query sizes, label balance, the
// train/validation/new split and the feature layout. Backs `metalearn inspect`.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"

namespace ml::inspect {

struct Distribution {
  std::int64_t count = 0, min = 0, p25 = 0, median = 0, p75 = 0, p90 = 0, p99 = 0, max = 0;
  double mean = 0;
};
Distribution distribution_of(std::vector<std::int64_t> values);

struct TaskLine {
  std::string name;
  std::int64_t examples = 0, positives = 0, negatives = 0;
  std::string role;
  std::string drop_reason;
};

struct RoleCount {
  std::int64_t tasks = 0, examples = 0;
};

// One features.embeddings table: its size, and which of the ids of each split's examples (the
// table's join: items or users) it lacks, which get its "missing" vector.
struct EmbeddingProfile {
  std::string name, file, join, missing;
  std::int64_t rows = 0;
  int dim = 0;
  struct Coverage {
    std::int64_t ids = 0, missing = 0;  // distinct ids among the split's examples
  };
  Coverage train, validation, held_out_new;
};

struct LogProfile {
  std::string config_path;
  data::LoadReport load;
  std::int64_t rows_kept = 0, users = 0, items = 0, task_keys = 0, events = 0;
  std::string first_time, last_time;  // ISO-8601, "" without timestamps
  config::LabelKind label_kind = config::LabelKind::kImplicit;
  std::int64_t examples = 0, positives = 0, negatives = 0;  // binary
  std::int64_t sampled_negatives = 0, negatives_short = 0;
  double target_mean = 0, target_std = 0, target_min = 0, target_max = 0;  // regression
  std::int64_t classes = 0;                                                // multiclass
  std::string time_cutoff;
  std::int64_t rows_before_cutoff = 0;
  Distribution task_sizes;     // examples per task (tasks with >= 1 example)
  int support = 0, query = 0;  // support may be config::kSupportAll
  std::int64_t qualifying = 0;
  RoleCount train, validation, held_out_new, dropped;
  std::vector<std::string> new_task_names;
  std::vector<TaskLine> tasks;  // all, sorted by name
  std::size_t dense_features = 0, id_fields = 0;
  std::vector<std::string> dense_feature_names;
  std::vector<EmbeddingProfile> embeddings;
  // Why train would refuse this log (tasks::training_tasks_problem); "" when it would not.
  std::string training_problem;
};

// Loads, builds tasks, splits and fits the feature space exactly as training would.
LogProfile profile_log(const config::Config& config);

void to_json(nlohmann::json& j, const LogProfile& p);
// Human-readable report; `list_tasks` adds one line per task.
void print_profile(const LogProfile& p, std::ostream& out, bool list_tasks);

}  // namespace ml::inspect
