// `metalearn adapt` as a library call: fine-tunes a trained run on new tasks' support sets with
// the meta-learned inner loop, measures the query before and after, and writes one adapted
// checkpoint per task. Torch-free so that the CLI and tests can include it cheaply.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/choices.hpp"
#include "config/input_format.hpp"
#include "metrics/metrics.hpp"
#include "tasks/task_set.hpp"

namespace ml::runtime {
class ProcessGroup;  // runtime/distributed.hpp
}

namespace ml::inference {

// The episode index every adaptation draws, so the same run, task and shots always adapt on
// the same support set and are scored on the same query. Training draws indices from 0 on
// training tasks only and validation from 2^40, so this one is kept apart from both.
inline constexpr std::uint64_t kAdaptEpisode = 1ULL << 41;

struct AdaptOptions {
  std::string checkpoint;          // run directory or checkpoint file
  std::vector<std::string> tasks;  // task names; or all_new
  bool all_new = false;            // every task the run held out as new
  std::string support_csv;         // support rows from this CSV (same columns as the log); no query
  config::InputFormat support_format;  // how support_csv is written where it differs from the log
  // Support size (per class for multiclass); 0 = task.support; config::kSupportAll = every
  // example of the task not in the query.
  int shots = 0;
  // Inner-loop steps and learning rate; -1 / 0 = the run's setting chosen on validation tasks
  // (RUN/adaptation.json, written by train) at the K nearest the support size, else the
  // config's meta.adapt_steps / meta.inner_lr.
  int steps = -1;
  double inner_lr = 0;
  // Text runs: also K texts of each training class in the support, so that the adapted model
  // ranks the run's training classes and the new ones together.
  bool with_training_classes = false;
  std::string out_dir;  // where adapted checkpoints go; "" = RUN/adapted
  // Files named by the task's place in the summary (00001.mlckpt, ...) rather than by its name
  // (adapted_file_name), so that names that map to one file never collide: for a caller's own
  // folder (eval --importance's temporary one).
  bool numbered_file_names = false;
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget (env vars, else usable cores)
  // Under torchrun: the tasks are shared out over the launch's ranks (runtime/work_share.hpp);
  // rank 0 writes every adapted model and returns the whole summary, the others an empty one.
  // A text run's adaptation (one task) is rank 0's alone. nullptr: one process.
  runtime::ProcessGroup* group = nullptr;
};

using metrics::QueryMetrics;

struct TaskAdaptation {
  std::string task;
  std::string role;            // the task's role in the run ("new", "train", ...; "csv")
  std::string support_source;  // "episode" or the support CSV's path
  std::int64_t support_size = 0;
  std::int64_t query_size = 0;  // 0 with a support CSV: nothing to measure on
  // Text runs: the classes of the adapted head, in its row order (empty for a purchase log's
  // task), and how many of them are the run's training classes.
  std::vector<std::string> classes;
  std::int64_t training_classes = 0;
  int steps = 0;
  double inner_lr = 0;
  QueryMetrics before, after;  // before: the meta-learned init (0 steps); after: adapted
  double adapt_ms = 0;         // in-process wall time of the inner loop alone
  std::string checkpoint;      // the adapted checkpoint written
};

struct AdaptSummary {
  std::string source_checkpoint;  // the resolved checkpoint file adapted from
  // Where the steps and inner lr came from: "command line", "chosen on N validation tasks at
  // K=... (RUN/adaptation.json)", or the config's meta.adapt_steps / meta.inner_lr when the run
  // has no adaptation.json.
  std::string settings_source;
  config::Algorithm algorithm = config::Algorithm::kMaml;
  tasks::LabelKind label_kind = tasks::LabelKind::kBinary;
  std::string out_dir;
  std::vector<TaskAdaptation> tasks;
};

// Throws UsageError for contradictory options, CheckpointError for an unusable checkpoint,
// DataError for an unknown task (with a "did you mean") or one too small for the episode,
// NumericError when adaptation diverges. A text run's checkpoint is adapted by
// adapt_text_run (inference/text_adaptation.hpp).
AdaptSummary adapt(const AdaptOptions& options);

// UsageError for --steps or --inner-lr out of range.
void check_adaptation_settings(const AdaptOptions& options);

// The file name of a task's adapted checkpoint: the name with anything but ASCII letters,
// digits, '-', '_', '.' and non-ASCII (UTF-8) bytes replaced by '_', a leading '.' by '_' (a name
// of dots alone gets a "task" prefix), plus ".mlckpt" (README, "Adapted models and predict").
std::string adapted_file_name(const std::string& task);

// The headline metric of a label kind: "AUC" (binary), "RMSE" (regression), "accuracy"; and
// its value in `metrics`.
std::string headline_metric(tasks::LabelKind label_kind);
double headline(const QueryMetrics& metrics, tasks::LabelKind label_kind);

nlohmann::json to_json(const AdaptSummary& summary);
// One row per task: task, support, query, headline metric before -> after, milliseconds.
std::string format_table(const AdaptSummary& summary);

}  // namespace ml::inference
