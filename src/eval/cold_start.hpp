// `metalearn eval` as a library call: the cold-start protocol on a trained run's held-out new
// (or validation) tasks. Every method (the run's own algorithm, the algorithms of further runs
// given to compare, and the baselines `pretrain` and `scratch`) is adapted on exactly the same
// support sets and scored on the same query sets, over a grid of
// shots (support size K) x adaptation steps; per-task means over episodes give a mean and a 95%
// Student t interval across tasks, and paired per-task differences against each baseline.
// Torch-free on purpose, so the CLI and reports can include it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/confidence.hpp"

namespace ml::eval {

struct ColdStartOptions {
  std::string checkpoint;  // run directory or checkpoint file
  // Further runs (directories or checkpoint files) evaluated on exactly the same episodes, each
  // a method named after its algorithm (ALGORITHM@RUN_DIR_NAME when two runs share one). They
  // must share seed, data, task and split with `checkpoint` (else ConfigError naming the
  // difference); features, model and meta settings may differ, each run encodes its own way.
  std::vector<std::string> compare;
  // Which held-out tasks: "new" (the test tasks) or "validation" (to choose settings on, so
  // that the new tasks stay untouched until the final comparison).
  std::string task_role = "new";
  std::vector<int> shots{1, 5, 10, 20};  // support sizes K (per class for multiclass), >= 1
  std::vector<int> steps{0, 1, 5, 10};   // adaptation step counts, >= 0
  // Subset of {the runs' methods, "pretrain", "scratch"}; empty = all of them.
  std::vector<std::string> methods;
  // false: leave the pretrain baseline out (it may need a training run of the same budget).
  bool pretrain = true;
  int episodes = 10;  // per task and K, >= 1
  // Also rank each user's query items as RecBole-MetaRec does (relevant = the user's 5
  // highest-labelled query items, every user counted; metrics::top_k_label_relevance): for
  // comparing with its published MeLU/MWUF figures, and ranking metrics for rating regression.
  bool top_label_ranking = false;
  std::string device = "auto";
  int threads = 0;  // CPU threads; 0 = runtime::resolve_threads (env vars, else all cores)
};

struct MetricInfo {
  // "auc", "log_loss", "accuracy", "precision@5", "ndcg@5", "mrr@5", "rmse" or "mae"; with
  // top_label_ranking also "precision@5_top_labels", "ndcg@5_top_labels", "mrr@5_top_labels"
  std::string name;
  std::string title;  // for people: "AUC", "log loss", "P@5", "RMSE", ...
  bool higher_is_better = true;
};

struct TaskValue {
  double value = 0;  // mean over the task's episodes with a defined value; NaN when none had
  int episodes = 0;  // episodes that entered the mean
};

struct MetricResult {
  std::string metric;
  metrics::Interval interval;       // over tasks (NaN task values skipped)
  std::vector<TaskValue> per_task;  // aligned with ShotTasks::evaluated of the cell's K
};

struct Comparison {
  std::string baseline;  // "pretrain" | "scratch"
  std::string metric;
  metrics::Interval difference;  // mean over tasks of (method - baseline), same K and steps
};

struct Cell {
  std::string method;
  int shots = 0, steps = 0;
  std::vector<MetricResult> metrics;  // in ColdStartResult::metrics order
  std::vector<Comparison> comparisons;
  int diverged_episodes = 0;  // episodes whose outputs held NaN/Inf (scored as undefined)

  const MetricResult* metric(const std::string& name) const;
  const Comparison* comparison(const std::string& baseline, const std::string& metric) const;
};

struct SkippedTask {
  std::string task, reason;
};

struct ShotTasks {
  int shots = 0;
  std::vector<std::string> evaluated;  // new tasks that gave episodes at this K
  std::vector<SkippedTask> skipped;    // new tasks too small for this K
};

// The conclusion at one K: the best cell by the primary metric, and a paired comparison. When a
// method beats the baselines, `compared` is that best cell and `against` the best cell of the
// pretrain baseline (scratch without pretrain); when a baseline wins, `compared` is the run's own
// algorithm at its best and `against` the winning baseline, so the line says how far behind it is.
struct Verdict {
  int shots = 0;
  std::string best_method;  // "" when no task gave an episode at this K
  int best_steps = 0;
  metrics::Interval best_value;
  std::string compared_method, against_method;  // "" when there is nothing to compare
  int compared_steps = 0, against_steps = 0;
  metrics::Interval difference;  // compared - against, paired over tasks
  bool excludes_zero = false;    // the 95% interval of the difference excludes 0
  std::string text;              // the human-readable line
};

// What the evaluated run was trained on, for reports: the log, its tasks and the model, read
// from the run's config and the data prepared for the evaluation.
struct RunSummary {
  std::vector<std::string> data_files;
  std::string task_column;  // the column that groups rows into tasks
  std::string label;        // config task.label.kind ("implicit", "event_binary", ...)
  std::string time_cutoff;  // "" without a temporal split
  std::int64_t rows_read = 0, rows_rejected = 0, rows_kept = 0;
  std::int64_t users = 0, items = 0;
  // Every task key with an example, and how the split used them (new ones: new_tasks).
  int tasks = 0, train_tasks = 0, validation_tasks = 0, dropped_tasks = 0;
  int support = 0;             // the K the run was meta-trained with (or config::kSupportAll)
  std::string model;           // "mlp 128-64", "embedding_mlp 128-64, embeddings 16"
  int meta_iterations = 0;     // the run's meta.iterations
  int trained_iterations = 0;  // what its checkpoint reached
  int inner_steps = 0;         // meta-training inner steps
  double inner_lr = 0;
  std::string inner_params;  // "dense" | "all" | "head"
};

// One evaluated run: its method name and where it came from.
struct RunInfo {
  std::string method, algorithm, checkpoint_path, run_dir;
};

struct ColdStartResult {
  std::string checkpoint_path, run_dir, config_path;
  std::string algorithm;            // the (first) run's own meta.algorithm
  std::vector<RunInfo> runs;        // the first run, then the compared ones
  std::string task_role = "new";    // the held-out tasks evaluated: "new" | "validation"
  std::string label_kind;           // "binary" | "regression" | "multiclass"
  std::vector<MetricInfo> metrics;  // the first is the primary metric
  std::vector<int> shots, steps;    // sorted, unique
  std::vector<std::string> methods;
  int episodes = 0, query = 0;
  int new_tasks = 0;                // held-out tasks of the evaluated role (new or validation)
  std::string pretrain_checkpoint;  // "" when pretrain is not evaluated or is the run itself
  std::string pretrain_source;      // "reused" | "resumed" | "trained" | "run" | ""
  std::vector<ShotTasks> tasks;     // one per K
  std::vector<Cell> cells;          // method x shots x steps, every combination present
  std::vector<Verdict> verdicts;    // one per K
  RunSummary run;
  double seconds = 0;

  const Cell* cell(const std::string& method, int shots, int steps) const;
  const ShotTasks* tasks_at(int shots) const;
};

// The cell at K with the best mean of metric `metric_index` (ColdStartResult::metrics order;
// the first of equals), among the cells `among` accepts; nullptr when none has a finite mean.
// Eval's verdicts and the report's highlights both choose with it.
const Cell* best_cell_where(const ColdStartResult& result, int shots, std::size_t metric_index,
                            const std::function<bool(const Cell&)>& among);
// The same among one method's cells ("" = every method).
const Cell* best_cell(const ColdStartResult& result, int shots, std::size_t metric_index = 0,
                      const std::string& method = "");

// Throws CheckpointError (missing, corrupt or adapted-only checkpoint), DeviceError, UsageError
// (invalid shots/steps/episodes/methods/task role), ConfigError (a compared run differs in seed,
// data, task or split) and DataError (the run has no held-out task of the asked role that can
// give an episode at any asked K). Trains the pretrain baseline into RUN/baselines/pretrain when it
// is asked for and not there yet (resumes it when it stopped early), with the run's config and
// budget.
ColdStartResult run_cold_start(const ColdStartOptions& options);

// One interval as JSON: mean, lower, upper, half_width and n, NaN as null.
nlohmann::json interval_json(const metrics::Interval& interval);
// Everything in the result; NaN becomes null.
nlohmann::json to_json(const ColdStartResult& result);
// Writes to_json(result) to `path`; DataError when it cannot be written.
void write_json(const ColdStartResult& result, const std::string& path);
// The human-readable table of the primary metric, then the verdict lines.
std::string format_table(const ColdStartResult& result);

}  // namespace ml::eval
