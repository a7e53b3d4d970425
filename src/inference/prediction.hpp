// `metalearn predict` as library calls: score the rows of a CSV with an adapted model or a run's
// meta-learned init, or recommend a task's top-K items for users; plus the CSV writers, which
// write a file atomically so that an error never leaves half an output behind. Torch-free.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "config/choices.hpp"
#include "config/input_format.hpp"
#include "data/purchase_log.hpp"
#include "data/text_dataset.hpp"
#include "tasks/task_set.hpp"

namespace ml::runtime {
class ProcessGroup;  // runtime/distributed.hpp
}

namespace ml::inference {

struct ScoringModel;  // inference/adapted_model.hpp

struct PredictOptions {
  std::string checkpoint;      // adapted checkpoint, checkpoint file or run directory
  std::string input;           // CSV with the log's columns (the label columns are ignored)
  config::InputFormat format;  // how `input` is written where it differs from the run's log
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget (env vars, else usable cores)
  // Under torchrun: the chunks of rows are shared out over the launch's ranks
  // (runtime/work_share.hpp) and every rank gets all scores; nullptr: one process.
  runtime::ProcessGroup* group = nullptr;
};

struct RowScore {
  std::string user, item, task;  // the row's key cells ("" where the row has none)
  double score = 0;        // binary: probability; regression: value; multiclass: class probability
  std::string class_name;  // multiclass: the predicted class
};

struct RowScores {
  tasks::LabelKind label_kind = tasks::LabelKind::kBinary;
  std::string model_kind;  // "adapted" | "meta" (the run's init, unadapted)
  // Output header names of the key columns (the log's column names where they are named), and
  // which of user/item the log maps; the task column always is.
  std::string user_column, item_column, task_column;
  bool has_user = false, has_item = false;
  std::int64_t rows_read = 0, rows_skipped = 0;  // skipped: malformed, under data.bad_rows
  std::vector<RowScore> rows;                    // one per kept input row, in input order
};

// A purchase-log rows file given on the command line (predict --input, explain --input), read
// with the run's column mapping and data.bad_rows policy (the same loader as training, with
// data.files = [input]) and parsed with `threads` threads (a --threads value; 0: the budget);
// what the load set aside is logged. Throws DataError (missing file or column, malformed row
// under "fail"), UsageError for a format option the run's config key refuses.
data::PurchaseLog read_input_rows(const config::Config& run, const config::InputFile& input,
                                  int threads, data::LoadReport& report);

// Every row of `log` as an example of one task (its label is never read), in log order: what
// scoring or explaining a rows file encodes.
tasks::Task every_row(const data::PurchaseLog& log);

// The key columns predict writes before a row's score, named as the run's config names them
// (the log's header names, or the role when a column is unnamed), and which of user/item the
// log maps; the task column always is.
struct KeyColumns {
  std::string user, item, task;
  bool has_user = false, has_item = false;
};
KeyColumns key_columns(const config::Config& run, const data::PurchaseLog& log);
// The key cells of row `r` of `log` ("" where the row has none), in KeyColumns order.
struct RowKey {
  std::string user, item, task;
};
RowKey row_key(const data::PurchaseLog& log, std::size_t r);

// Reads `input` with the model's column mapping and bad_rows policy (the same loader as
// training, with data.files = [input]) and scores every kept row. Logs a warning for rows of
// other tasks than an adapted model's and for mostly tied scores. Throws CheckpointError,
// DataError (missing file or column, malformed row under "fail"), UsageError (a protonet or
// multiclass run, which can only score after adaptation).
RowScores score_rows(const PredictOptions& options);

struct RecommendOptions {
  std::string checkpoint;
  std::string task;  // recommend among the items of this task; "" = the adapted model's task
  std::vector<std::string> users;  // for each of these users
  int top_k = 10;
  std::string input;  // the log whose items and interactions count; "" = the run's data.files
  config::InputFormat format;  // how `input` is written where it differs from the run's log
  std::string device = "auto";
  int threads = 0;
};

struct Recommendation {
  std::string user;
  int rank = 0;  // 1-based
  std::string item;
  double score = 0;
};

// For each user, every item seen in `task` in the log that the user has not interacted with in
// that task, scored as a (user, item) example; the top_k by score (ties by item id), best first.
// Logs a warning when a user's candidates got mostly tied scores (at most one distinct value,
// as printed, per two items), saying why that happens. Throws DataError with a "did you mean"
// for an unknown task or user (for a task missing from the run's log, also how to serve a new
// category: --input rows), UsageError for a multiclass model, bad options, or a task other
// than the one an adapted model was adapted to.
std::vector<Recommendation> recommend(const RecommendOptions& options);

struct TextPredictOptions {
  std::string checkpoint;      // an adapted text model (metalearn adapt on a text run)
  std::string input;           // CSV with the run's text column (data.text.column)
  config::InputFormat format;  // how `input` is written where it differs from the run's data
  int top_k = 1;               // classes per row, best first (at most the model's classes)
  std::string device = "auto";
  int threads = 0;
  runtime::ProcessGroup* group = nullptr;  // as PredictOptions::group, over chunks of texts
};

struct TextPrediction {
  std::string id;                                   // the input's id column's cell ("" without one)
  std::string text;                                 // the text as read
  std::vector<std::pair<std::string, double>> top;  // (class, probability), best first
};

struct TextPredictions {
  std::string text_column, id_column;  // id_column: "" when the input has no id column
  int top_k = 1;
  std::int64_t classes = 0;  // of the model
  std::int64_t rows_read = 0, rows_skipped = 0;
  std::vector<TextPrediction> rows;  // one per kept input row, in input order
};

// The name of the input column predict keeps next to each text's classes when the file has it.
inline constexpr const char* kTextIdColumn = "id";

// The texts of a file to classify with an adapted text model of config `run` (predict --input,
// export --inputs): its text column (the run's, or as `input`'s format options say), its
// kTextIdColumn cells when it has that column, under the run's data.bad_rows policy; rows set
// aside are logged. `text_column` (if not null) gets the column read. Throws as predict_texts.
data::TextDataset read_text_rows(const config::Config& run, const config::InputFile& input,
                                 data::TextLoadReport& report, std::string* text_column = nullptr);

// Classifies every kept row of `input` (read with the run's text column, CSV format and
// data.bad_rows policy) with an adapted text model: the softmax over its classes, top_k of them
// per row (ties by class order). Throws UsageError for a text run that was not adapted ("adapt
// first") or top_k < 1, DataError for a missing file or text column, or a malformed row under
// data.bad_rows = "fail", CheckpointError for an unusable checkpoint.
TextPredictions predict_texts(const TextPredictOptions& options);

// Warns, for a model adapted to one task of a purchase log, when rows of other tasks (`tasks`:
// each row's task) are given to it: `outputs` names what it computed for them ("scores",
// "attributions"), which come from a model adapted to another task. Returns how many there are.
std::int64_t warn_about_other_tasks(const ScoringModel& model,
                                    const std::vector<std::string>& tasks,
                                    const std::string& outputs);

// One CSV cell as every writer here quotes it (RFC 4180: quoted when it holds a comma, a quote
// or a line break), and a number as predict prints it (7 significant digits).
std::string csv_cell(const std::string& text);
std::string csv_number(double value);

void write_scores_csv(const RowScores& scores, std::ostream& out);
// id (when the input has one), the text column, then class_1, probability_1, ... class_K,
// probability_K.
void write_text_predictions_csv(const TextPredictions& predictions, std::ostream& out);
void write_recommendations_csv(const std::vector<Recommendation>& recommendations,
                               std::ostream& out);

// Hands `write` `standard_output` (the CLI passes std::cout) when `path` is empty, else writes
// PATH atomically (util/atomic_file.hpp: missing folders are created, PATH is complete or left as
// it was). Throws IoError (FileWriteError) when the file cannot be written.
void write_output(const std::string& path, std::ostream& standard_output,
                  const std::function<void(std::ostream&)>& write);

}  // namespace ml::inference
