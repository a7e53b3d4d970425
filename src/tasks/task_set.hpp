// Few-shot tasks built from the purchase log: rows grouped by the configured task key, turned
// into labelled examples (event labels, implicit positives with sampled negatives, regression
// targets or classes), checked against the asked support/query sizes, and split into training,
// validation and new tasks. New and validation tasks are held out whole.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "util/enum_names.hpp"

namespace ml::tasks {

enum class LabelKind { kBinary, kRegression, kMulticlass };
enum class TaskRole { kTrain, kValidation, kNew, kDropped };
const char* role_name(TaskRole role);
const char* label_kind_name(LabelKind kind);  // "binary", "regression", "multiclass"

// Why a task cannot give an episode of the asked shape, or was left out by task.min_examples or
// task.max_examples. Reports count dropped and skipped tasks by it, so that a heavy user left out
// by max_examples is not called too small.
enum class DropCause {
  kNone,
  // fewer than support + query (query + 1 with support "all"; per class for multiclass), or
  // min_examples
  kTooFewExamples,
  kTooManyExamples,  // more than task.max_examples
  kOneLabelClass,    // binary, unstratified or support "all": one class, so no scorable query
  kTooFewPositives,  // binary, stratified: the support would take every positive
  kTooFewNegatives,  // binary, stratified: the support would take every negative
  kTooFewClasses,    // multiclass: fewer classes with support + query examples than ways
};

// The cause and the task's own numbers ("5 examples, need support + query = 6"); kNone and ""
// when the task qualifies.
struct DropReason {
  DropCause cause = DropCause::kNone;
  std::string text;
};

// For people, as reports count tasks: "too small", "above task.max_examples", ...
const char* drop_cause_text(DropCause cause);

// The number of tasks of each cause, in declaration order; causes without a task left out.
std::vector<std::pair<DropCause, int>> count_drop_causes(const std::vector<DropCause>& causes);

// The counts for people: "5 too small, 2 above task.max_examples".
std::string drop_counts_text(const std::vector<std::pair<DropCause, int>>& counts);

struct Example {
  std::int64_t row = -1;  // log row, or -1 for a sampled negative (features come from ids)
  std::int32_t user = data::kNoId;
  std::int32_t item = data::kNoId;
  float label = 0;  // 0/1, the regression target, or the global class id
  std::int64_t time = data::kNoTime;
};

struct Task {
  std::int32_t id = data::kNoId;  // the log's task dictionary id
  std::string name;
  std::vector<Example> examples;
  std::int64_t positives = 0, negatives = 0;   // binary labels
  std::vector<std::int32_t> eligible_classes;  // multiclass: classes with >= K + Q examples
  TaskRole role = TaskRole::kDropped;
  std::string drop_reason;  // why the task does not qualify ("" when it does)
  DropCause drop_cause = DropCause::kNone;
};

struct TaskSet {
  LabelKind kind = LabelKind::kBinary;
  std::vector<Task> tasks;              // every task key with at least one example, sorted by name
  std::int64_t rows_before_cutoff = 0;  // history rows (only with split.time_cutoff)
  std::int64_t cutoff = data::kNoTime;
  std::int64_t sampled_negatives = 0;
  std::int64_t negatives_short = 0;  // negatives that could not be drawn (user saw every item)

  std::vector<const Task*> with_role(TaskRole role) const;
  const Task* find(const std::string& name) const;
};

LabelKind label_kind(const config::Config& config);
LabelKind label_kind(config::LabelKind kind);  // the outputs a config label kind gives

// Groups rows into tasks with labels and decides which tasks qualify for the configured sizes.
TaskSet build_tasks(const data::PurchaseLog& log, const config::Config& config);

// Assigns roles: split.new_tasks by name (an unknown name is a DataError) or a seeded
// split.new_fraction of the qualifying tasks, then split.validation_fraction, rest train.
void split_tasks(TaskSet& set, const config::Config& config);

// One key per (user, item) pair, for sets and maps of pairs; kNoId is a value like any other.
inline std::uint64_t pair_key(std::int32_t user, std::int32_t item) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(user)) << 32) |
         static_cast<std::uint32_t>(item);
}

// Why `set` gives training nothing to train on, in the log's terms, as one line: the first of
// no row with a task key; no row at or after split.time_cutoff; no row with a label (binary:
// no positive, or no negative, example; implicit: no row with a positive event); every task
// dropped (counted by cause, with the largest task); every qualifying task held out; or a single
// qualifying task while the split asks for held-out tasks and so holds out none. "" when
// training can go on.
std::string training_tasks_problem(const data::PurchaseLog& log, const TaskSet& set,
                                   const config::Config& config);

// Throws DataError with training_tasks_problem() when it is not ""; warns (one line each) when
// split.new_fraction or split.validation_fraction holds out no task of the qualifying ones.
void require_training_tasks(const data::PurchaseLog& log, const TaskSet& set,
                            const config::Config& config);

// True for log rows that statistics may be fitted on: not in a held-out (new or validation)
// task and, with a time cutoff, before it.
std::vector<bool> training_rows(const data::PurchaseLog& log, const TaskSet& set);

}  // namespace ml::tasks

namespace ml {

template <>
struct EnumNames<tasks::DropCause> {
  static constexpr EnumName<tasks::DropCause> entries[] = {
      {tasks::DropCause::kNone, "none"},
      {tasks::DropCause::kTooFewExamples, "too_few_examples"},
      {tasks::DropCause::kTooManyExamples, "too_many_examples"},
      {tasks::DropCause::kOneLabelClass, "one_label_class"},
      {tasks::DropCause::kTooFewPositives, "too_few_positives"},
      {tasks::DropCause::kTooFewNegatives, "too_few_negatives"},
      {tasks::DropCause::kTooFewClasses, "too_few_classes"}};
};

}  // namespace ml
