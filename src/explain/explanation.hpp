// `metalearn explain` as library calls: why a model scores the rows of a CSV as it does, by
// Integrated Gradients (Sundararajan et al. 2017, arXiv:1703.01365; explain/
// integrated_gradients.hpp) over its input (explain/model_input.hpp says what is attributed and
// against which baseline), and, for an adapted model, what adaptation changed: the same
// attributions from the model it was adapted from and the features whose importance moved most.
// Plus the CSV and JSON writers. Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/input_format.hpp"
#include "explain/steps.hpp"

namespace ml::explain {

// The completeness tolerance: a row's gap |sum of attributions - (score - baseline score)| is
// within it when at most this share of |score - baseline score| (the paper's section 6 advice:
// "within 5%"), or at most kGapFloor where the two scores are (nearly) equal: a hundredth of a
// logit moves a probability by at most a quarter of a percentage point.
inline constexpr double kRelativeTolerance = 0.05;
inline constexpr double kGapFloor = 0.01;

struct ExplainOptions {
  std::string checkpoint;  // an adapted model, a checkpoint file or a run directory
  std::string input;       // CSV rows in the run's columns (a text run: its text column)
  config::InputFormat format;
  int steps = kDefaultSteps;  // 1 to kMaxSteps (explain/steps.hpp)
  int top = 5;                // attributions per row in the CSV, the JSON and the page; >= 1
  // Multiclass: the class whose logit is explained, by name; "" = each row's predicted class.
  std::string class_name;
  // The model before adaptation: "" = the run an adapted model records (its meta-learned init)
  // and nothing for a run's own model; any run or checkpoint otherwise.
  std::string before;
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget
  // The files the caller will write, as (option, path), checked before any work: none may be
  // --input or name another's file, by any spelling of the path (UsageError), each must be
  // writable (FileWriteError); and as each model is loaded, none may be part of its run: its
  // checkpoint, the data it reads, a file of its run directory (run/run_files.hpp).
  std::vector<std::pair<std::string, std::string>> outputs;
};

struct FeatureAttribution {
  std::string feature;  // a dense feature, an id field or a token (explain/model_input.hpp)
  std::string value;    // its value in the row
  double attribution = 0;
};

struct RowExplanation {
  std::vector<std::string> key;  // the row's key cells, as Explanation::key_columns name them
  std::string class_name;        // multiclass: the class whose logit is explained
  double score = 0;              // the explained output: logit, value or class logit
  double probability = 0;        // binary: sigmoid(score); multiclass: the class's softmax; NaN
  double baseline_score = 0;     // the output at the baseline input
  double gap = 0;                // |sum of attributions - (score - baseline_score)|
  double tolerance = 0;          // the gap allowed (kRelativeTolerance, kGapFloor)
  // Every segment of the row, largest |attribution| first (ties in input order).
  std::vector<FeatureAttribution> attributions;
};

// A feature's mean |attribution| over the rows (0 where a row lacks it: a token it does not
// hold), with the rows that hold it.
struct FeatureImportance {
  std::string feature;
  double mean_abs = 0;
  std::int64_t rows = 0;
  // The same value in every one of two or more rows: its attribution moves every row's score
  // alike, an offset rather than what tells the rows apart (e.g. item_popularity = 0 for every
  // item of a category new to the log).
  bool constant = false;
};

struct ModelExplanation {
  std::string checkpoint;                     // the resolved file
  std::string kind;                           // "adapted" | "meta" (a run's meta-learned init)
  std::vector<RowExplanation> rows;           // one per kept input row, in input order
  std::vector<FeatureImportance> importance;  // largest first
  double max_gap = 0;                         // over the rows
  std::int64_t rows_over_tolerance = 0;
};

// "What adaptation changed": a feature's mean |attribution| before and after.
struct FeatureChange {
  std::string feature;
  double before = 0, after = 0;
  bool constant = false;  // FeatureImportance::constant (over every task's rows, across tasks)
  double change() const { return after - before; }
};

struct Explanation {
  std::string label_kind;  // "binary" | "regression" | "multiclass"
  std::string explained;   // what the score is, in words ("the purchase logit", ...)
  std::string baseline;    // the baseline input, in words
  int steps = kDefaultSteps;
  std::string task;                      // an adapted purchase-log model's task ("" otherwise)
  std::vector<std::string> key_columns;  // header names of RowExplanation::key
  std::int64_t rows_read = 0, rows_skipped = 0;
  // Rows of other tasks than the one an adapted purchase-log model was adapted to (warned about).
  std::int64_t rows_of_other_tasks = 0;
  ModelExplanation model;
  // With a model before adaptation: its explanation of the same rows, and the changes, largest
  // |change| first.
  std::optional<ModelExplanation> before;
  std::vector<FeatureChange> changes;
  std::string before_note;  // why there is no `before` where one was looked for ("" otherwise)
};

// Reads `input` with the model's column mapping (as predict --input does), explains every kept
// row and, for an adapted purchase-log model (or with options.before), the model before
// adaptation. Logs one line with the largest completeness gap and the tolerance, and a warning
// when rows exceed it (more --steps). Throws UsageError (steps or top < 1, a model it cannot
// explain, --class for a model without classes or naming none of them), CheckpointError,
// DataError (missing file or column, malformed rows under "fail"), NumericError (NaN or Inf
// outputs).
Explanation explain(const ExplainOptions& options);

// eval --importance: what adaptation taught each new task, as mean |attribution| over its own
// query rows before (the run's meta-learned model) and after adaptation.
struct TaskImportance {
  std::string task;
  std::int64_t support_size = 0, query_size = 0;
  int adapt_steps = 0;  // the inner-loop steps and learning rate it was adapted with
  double inner_lr = 0;
  // adapt's headline metric on the query ("AUC", "RMSE", "accuracy") before and after.
  std::string metric;
  double metric_before = 0, metric_after = 0;
  ModelExplanation after;                  // the adapted model on the task's query rows
  std::optional<ModelExplanation> before;  // the run's model on the same rows
  std::vector<FeatureChange> changes;      // largest |change| first (empty without `before`)
};

// Every feature of `task` before and after adaptation: its changes, or, without a model before
// it, the adapted model's importance (before 0); `constant` kept.
std::vector<FeatureChange> task_features(const TaskImportance& task);

struct NewTaskImportance {
  std::string checkpoint;       // the run's resolved checkpoint file
  std::string settings_source;  // where the adaptation steps and inner lr came from
  std::string explained, baseline;
  int steps = kDefaultSteps;          // Integrated Gradients' steps
  std::string before_note;            // why no task has a `before` ("" when each has one)
  std::vector<TaskImportance> tasks;  // in the run's order of its new tasks
  // Over the tasks: the mean of each feature's per-task mean |attribution| (0 for a task whose
  // rows lack it), before and after, the largest of the two first.
  std::vector<FeatureChange> across_tasks;
  double max_gap = 0;  // the largest completeness gap of any row, before or after
  std::int64_t rows = 0, rows_over_tolerance = 0;
};

// Every task the run `checkpoint` held out as new, adapted as `metalearn adapt --all-new`
// adapts it (the episode inference::kAdaptEpisode of its default support size, the steps and
// inner lr chosen on validation tasks: RUN/adaptation.json) into a temporary folder that is
// removed afterwards, and each adapted model explained as `metalearn explain --checkpoint
// ADAPTED` explains it without --input: on its own query rows, before and after. `steps`: the
// Integrated Gradients steps (>= 1). Throws UsageError for a text run or a model explain cannot
// explain (named by the run's path), and what adapt and explain throw.
NewTaskImportance explain_new_tasks(const std::string& checkpoint, int steps,
                                    const std::string& device, int threads);

// What explain_new_tasks checks first, from the checkpoint's header alone (for a caller that
// runs it after other long work): UsageError for a text run or a model explain cannot explain,
// CheckpointError for an unreadable checkpoint or RUN/adaptation.json, IoError when no folder
// can be made under TMPDIR (unset or empty: /tmp) for the adapted models.
void check_new_tasks_explainable(const std::string& checkpoint);

nlohmann::json to_json(const NewTaskImportance& importance);

// One line per (row, model, rank) for the `top` largest attributions of each row: the row's
// number in the input (1-based, over kept rows), its key cells, the model ("adapted", "before"
// or "meta"), the explained class (multiclass), score, probability (empty where none),
// baseline score, completeness gap, rank, feature, value, attribution.
void write_explanation_csv(const Explanation& explanation, int top, std::ostream& out);

// Everything, each row's attributions cut to `top`.
nlohmann::json to_json(const Explanation& explanation, int top);

}  // namespace ml::explain
