// `metalearn eval` as a library call: the cold-start protocol on a trained run's held-out tasks.
// Every method (the run's own algorithm, further runs given to compare, and the baselines:
// pretrain fine-tuning of all or of the head's parameters, a linear probe and, for multiclass,
// nearest class mean on the pretrained representation, and scratch) is adapted on exactly the
// same support sets and scored on the same query sets, over a grid of shots (support size K) x
// adaptation steps x inner learning rates; per-task means over episodes give a mean and a 95%
// Student t interval across tasks.
//
// The protocol keeps choosing and scoring apart (as in hyper-parameter selection on a held-out
// validation split, Bergstra & Bengio 2012, and the few-shot evaluations of Chen et al. 2019):
//   1. on the run's validation tasks, each method family's setting (inner lr variant, steps) is
//      chosen by the primary metric, a setting with a diverged episode excluded; the meta-learner
//      and the baseline to compare are chosen the same way;
//   2. on the new (test) tasks, those chosen settings are scored once; the verdict is their
//      paired per-task difference with its 95% CI.
// The full grid on the test tasks is kept as an exploration, labelled so, never used to choose.
// Torch-free on purpose, so the CLI and reports can include it.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/confidence.hpp"
#include "tasks/task_set.hpp"

namespace ml::runtime {
class ProcessGroup;  // runtime/distributed.hpp
}

namespace ml::eval {

// Eval's e-th episode of a task is the sampler's episode kEvalEpisodeBase + e
// (tasks::EpisodeSampler::sample), far from the indices training and validation draw.
constexpr std::uint64_t kEvalEpisodeBase = 1ULL << 42;

// One --checkpoint argument: "NAME=PATH" names a run explicitly; a bare PATH (or one that
// exists as written, '=' and all) leaves the name to eval (its algorithm, or its folder's name).
// UsageError for an empty NAME or PATH, or a NAME of other characters than letters, digits,
// '_', '-' and '.'.
struct RunArgument {
  std::string name, path;
};
RunArgument parse_run_argument(const std::string& argument);

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
  // Inner learning rates the runs' own methods adapt with (each a variant chosen among on
  // validation tasks); empty = each run's adaptation_lr_grid(meta.inner_lr), the grid train's
  // adaptation choice uses too. Ignored for metasgd (learned rates) and protonet (no inner loop).
  std::vector<double> inner_lrs;
  // Learning rates the pretrain baselines fine-tune with; the run's meta.inner_lr is always
  // added. Chosen among on validation tasks together with steps and head/all.
  std::vector<double> baseline_lrs{0.01, 0.1};
  // Method families to evaluate: a subset of the runs' names and the baselines ("pretrain",
  // "pretrain_head", "linear_probe", "nearest_class_mean", "scratch"; those of a compared run
  // with other features or model are suffixed "[RUN]", e.g. "pretrain[anil_history]"); empty =
  // all that apply.
  std::vector<std::string> methods;
  // false: leave out the baselines built on the pretrain run (pretrain, pretrain_head,
  // linear_probe, nearest_class_mean): it may need a training run of the same budget.
  bool pretrain = true;
  int episodes = 10;  // per task and K, >= 1
  // Also rank each user's query items as RecBole-MetaRec does (relevant = the user's 5
  // highest-labelled query items, every user counted; metrics::top_k_label_relevance): for
  // comparing with its published MeLU/MWUF figures, and ranking metrics for rating regression.
  bool top_label_ranking = false;
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget (env vars, else usable cores)
  // Under torchrun: the episodes are shared out over the launch's ranks (runtime/work_share.hpp)
  // and every rank gets the whole result, equal to one process's; rank 0 trains the pretrain
  // baseline when it is missing. nullptr: one process.
  runtime::ProcessGroup* group = nullptr;
};

struct MetricInfo {
  // "auc", "log_loss", "accuracy", "precision@5", "ndcg@5", "mrr@5", "rmse" or "mae"; with
  // top_label_ranking also "precision@5_top_labels", "ndcg@5_top_labels", "mrr@5_top_labels"
  std::string name;
  std::string title;  // for people: "AUC", "log loss", "P@5", "RMSE", ...
  bool higher_is_better = true;
  // The query composition fixes this ranking metric at every K that gave an episode (see
  // ShotTasks::fixed_by_query): it is no result, and reports say so instead of showing it as one.
  bool fixed_by_query = false;
};

// One evaluated method: a family (a run's name or a baseline) at one inner learning rate.
struct MethodInfo {
  // The family, or "FAMILY lr=X" / "linear_probe l2=X" when the family has several variants,
  // with " @best" / " @latest" for the pretrain run's checkpoint when it offers both.
  std::string name;
  std::string family;  // the run's name, or pretrain | pretrain_head | linear_probe |
                       // nearest_class_mean | scratch
  double inner_lr = std::numeric_limits<double>::quiet_NaN();  // NaN: no inner loop
  bool baseline = false;
  double l2 = std::numeric_limits<double>::quiet_NaN();  // the linear probe's penalty
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

// A cell against the baseline chosen on validation tasks at the same K (that method and step
// count): exploration only.
struct Comparison {
  std::string baseline;  // the chosen baseline's method name
  int baseline_steps = 0;
  std::string metric;
  metrics::Interval difference;  // mean over tasks of (cell - chosen baseline)
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
  tasks::DropCause cause = tasks::DropCause::kTooFewExamples;
};

struct ShotTasks {
  int shots = 0;
  std::vector<std::string> evaluated;  // new tasks that gave episodes at this K
  std::vector<SkippedTask> skipped;    // tasks that cannot give an episode at this K, and why
  // Ranking metrics (names) whose value no scoring can change at this K: in every episode every
  // averaged list is one whose composition fixes it (metrics::RankingMetrics), e.g. one relevant
  // item among at most 5 fixes P@5 at 0.2. Every method then gets the same value.
  std::vector<std::string> fixed_by_query;
};

// A family's setting chosen on validation tasks at one K: its variant (inner lr) and step count
// with the best validation mean of the primary metric, among those where no episode diverged.
struct Choice {
  int shots = 0;
  std::string family, method;  // method: the chosen variant's name (MethodInfo::name)
  int steps = 0;
  bool baseline = false;
  metrics::Interval validation;  // the chosen setting on the validation tasks
  metrics::Interval test;        // the same setting scored once on the new tasks (n = 0 if none)
  int excluded = 0;              // settings left out because an episode diverged
};

// The conclusion at one K: the meta-learner and the baseline chosen on validation tasks (each
// the family, variant and step count with the best validation mean), scored once on the new
// tasks, and their paired per-task difference there.
struct Verdict {
  int shots = 0;
  std::string chosen_on;  // "validation", or "" when nothing could be chosen (no validation task)
  int validation_tasks = 0;  // validation tasks that gave episodes at this K
  // The better of the two chosen settings on the new tasks ("" when nothing was chosen).
  std::string best_method;
  int best_steps = 0;
  metrics::Interval best_value;
  std::string compared_method, against_method;  // the chosen meta-learner, the chosen baseline
  int compared_steps = 0, against_steps = 0;
  metrics::Interval compared_value, against_value;  // each on the new tasks
  metrics::Interval difference;                     // compared - against, paired over the new tasks
  bool excludes_zero = false;                       // the 95% interval of the difference excludes 0
  std::string text;                                 // the human-readable line
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
  std::vector<std::pair<tasks::DropCause, int>> dropped_by_cause;  // tasks::count_drop_causes
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
  std::string algorithm;                // the (first) run's own meta.algorithm
  std::vector<RunInfo> runs;            // the first run, then the compared ones
  std::string task_role = "new";        // the held-out tasks evaluated: "new" | "validation"
  std::string label_kind;               // "binary" | "regression" | "multiclass"
  std::vector<MetricInfo> metrics;      // the first is the primary metric
  std::vector<int> shots, steps;        // sorted, unique
  std::vector<std::string> methods;     // every evaluated method's name, in method_info order
  std::vector<MethodInfo> method_info;  // aligned with methods
  int episodes = 0, query = 0;
  int new_tasks = 0;                // held-out tasks of the evaluated role (new or validation)
  std::string pretrain_checkpoint;  // "" when pretrain is not evaluated or is the run itself
  std::string pretrain_source;      // "reused" | "resumed" | "trained" | "run" | ""
  std::vector<ShotTasks> tasks;     // one per K
  std::vector<Cell> cells;          // on the task_role tasks: method x shots x steps, all present
  // The protocol's first stage (task_role "new" only): the same grid on the validation tasks,
  // which tasks gave episodes there, and what was chosen on it (one Choice per K and family).
  std::vector<ShotTasks> validation_tasks;
  std::vector<Cell> validation_cells;
  std::vector<Choice> choices;
  std::vector<Verdict> verdicts;  // one per K
  RunSummary run;
  double seconds = 0;

  const Cell* cell(const std::string& method, int shots, int steps) const;
  const ShotTasks* tasks_at(int shots) const;
  const MethodInfo* method(const std::string& name) const;
  // The choice of `family` at K; nullptr when none was made.
  const Choice* choice(const std::string& family, int shots) const;
  // Whether the cell is one of the verdict's two chosen settings at its K.
  bool chosen(const Cell& cell) const;
  // Whether the query composition fixes `metric` at K (ShotTasks::fixed_by_query).
  bool fixed_by_query(const std::string& metric, int shots) const;
};

// Each family's choice at each K from `cells` (validation cells): per family, the variant and
// steps with the best mean of the primary metric among cells without a diverged episode.
std::vector<Choice> choose_on_validation(const std::vector<Cell>& cells,
                                         const std::vector<MethodInfo>& methods,
                                         const std::vector<int>& shots, bool higher_is_better);

// The inner learning rates a meta-learner's adaptation is chosen among by default, in eval and
// in train's closing choice (RUN/adaptation.json): {inner_lr / 3, inner_lr, 3 inner_lr}, less
// any a float cannot hold (run::usable_inner_lr: 3 x 2e38 would overflow in torch).
std::vector<double> adaptation_lr_grid(double inner_lr);

// With task_role "new", runs stage 1 on the validation tasks (when the run has none, nothing is
// chosen and the verdicts say so) and stage 2 on the new tasks; with "validation", the grid on
// the validation tasks alone, for exploring (its choices are made and reported, no verdict).
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
// Writes to_json(result) to `path`; IoError (FileWriteError) when it cannot be written.
void write_json(const ColdStartResult& result, const std::string& path);
// The human-readable table of the primary metric, then the verdict lines and notes.
std::string format_table(const ColdStartResult& result);
// The skipped tasks at one K counted by cause: "3 too small, 1 one label class".
std::string skipped_counts_text(const ShotTasks& tasks);
// One sentence per metric the query composition fixes at some K (ShotTasks::fixed_by_query),
// with its value at each such K: "P@5 is fixed by the query composition (0.200 at K=1, ...):
// ..."; "" when none is. The table, the report and its Markdown all say it with these words.
std::string fixed_by_query_note(const ColdStartResult& result);

}  // namespace ml::eval
