// Scoring rows and recommending items: see prediction.hpp.
#include "inference/prediction.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <ostream>
#include <unordered_set>

#include "data/log_cache.hpp"
#include "data/purchase_log.hpp"
#include "data/text_dataset.hpp"
#include "inference/adapted_model.hpp"
#include "models/batch.hpp"
#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "runtime/device.hpp"
#include "runtime/work_share.hpp"
#include "runtime/worker_pool.hpp"
#include "tasks/task_set.hpp"
#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/strings.hpp"

namespace ml::inference {

namespace fs = std::filesystem;
using tasks::LabelKind;

namespace {

// Rows encoded per forward pass: bounds memory on large inputs.
constexpr std::size_t kChunk = 8192;
// Texts per forward pass of a transformer: its activations are [n, max_len, d] per layer.
constexpr std::size_t kTextChunk = 256;

std::string column_title(const config::ColumnRef& ref, const char* role) {
  return ref.name.empty() ? role : ref.name;
}

// A log read with the model's column mapping: `input` replaces data.files ("" keeps them), read
// as its format options say.
struct LoadedLog {
  data::LoadReport report;
  data::PurchaseLog log;
};

// `threads` (the command's --threads) parse it.
std::unique_ptr<LoadedLog> load_log(const ScoringModel& model, const std::string& input,
                                    const config::InputFormat& format, int threads) {
  auto l = std::make_unique<LoadedLog>();
  if (!input.empty()) {
    l->log = read_input_rows(model.config, {input, "--input", format}, threads, l->report);
    return l;
  }
  // The training log (recommending) is read through the cache.
  config::Config config = model.config;
  config.run.threads = threads;
  l->log = data::load_purchase_log_cached(config, l->report);
  data::warn_about_load(l->report);
  return l;
}

struct Outputs {
  std::vector<double> score;
  std::vector<std::int64_t> cls;  // multiclass: predicted column
};

// Scores `task.examples` in chunks of kChunk rows on the pool's workers; binary logits become
// probabilities, multiclass logits the probability of the most likely class. The chunks are the
// same whatever the worker count, so are the scores. Under a launch each rank scores its share
// of the chunks and every rank gets all scores.
Outputs score_examples(const ScoringModel& model, const features::FeatureEncoder& encoder,
                       const tasks::Task& task, runtime::WorkerPool& pool,
                       const runtime::WorkShare& share = {}) {
  const auto n = task.examples.size();
  std::vector<Outputs> parts((n + kChunk - 1) / kChunk);
  const auto [first_part, last_part] = share.mine(parts.size());
  pool.run(last_part - first_part, [&](std::size_t mine) {
    const std::size_t part = first_part + mine;
    throw_if_interrupted("scoring");  // a chunk at a time (util/interrupt.hpp)
    const std::size_t lo = part * kChunk;
    std::vector<std::size_t> idx(std::min(kChunk, n - lo));
    std::iota(idx.begin(), idx.end(), lo);
    models::Batch batch = models::make_batch(encoder, model.features.dense_dim(),
                                             model.features.id_fields(), task, idx);
    torch::Tensor out = model.outputs(batch).to(torch::kFloat64);
    if (!torch::isfinite(out).all().item<bool>())
      throw NumericError("'" + model.path + "' gives NaN or Inf scores: its weights diverged");
    Outputs& o = parts[part];
    if (model.label_kind == LabelKind::kMulticlass) {
      auto [p, c] = torch::softmax(out, 1).max(1);
      for (std::int64_t i = 0; i < p.size(0); ++i) {
        o.score.push_back(p[i].item<double>());
        o.cls.push_back(c[i].item<std::int64_t>());
      }
    } else {
      torch::Tensor s = out.select(1, 0);
      if (model.label_kind == LabelKind::kBinary) s = torch::sigmoid(s);
      s = s.contiguous();
      o.score.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
    }
  });
  Outputs o;
  o.score.reserve(n);
  for (const Outputs& part : parts) {
    o.score.insert(o.score.end(), part.score.begin(), part.score.end());
    o.cls.insert(o.cls.end(), part.cls.begin(), part.cls.end());
  }
  if (share.sharded()) {
    // This rank's rows, then every rank's: (score, class) per row.
    const std::size_t begin = std::min(n, first_part * kChunk),
                      end = std::min(n, last_part * kChunk);
    std::vector<double> rows(n * 2, 0.0);
    for (std::size_t r = begin; r < end; ++r) {
      rows[r * 2] = o.score[r - begin];
      rows[r * 2 + 1] = o.cls.empty() ? 0.0 : static_cast<double>(o.cls[r - begin]);
    }
    share.fill_in(rows, 2, {begin, end});
    const bool classes = model.label_kind == LabelKind::kMulticlass;
    o.score.resize(n);
    o.cls.resize(classes ? n : 0);
    for (std::size_t r = 0; r < n; ++r) {
      o.score[r] = rows[r * 2];
      if (classes) o.cls[r] = static_cast<std::int64_t>(rows[r * 2 + 1]);
    }
  }
  return o;
}

// The workers for scoring `rows` rows with `model` in chunks (runtime/thread_plan.hpp): one per
// chunk up to the budget; a lone chunk of a large model gets the budget inside its products.
std::unique_ptr<runtime::WorkerPool> scoring_workers(const runtime::ThreadBudget& budget,
                                                     const ScoringModel& model, std::size_t rows) {
  runtime::WorkShape work;
  const std::size_t chunks = model.device.is_cuda() ? 1 : (rows + kChunk - 1) / kChunk;
  work.units = static_cast<int>(std::clamp<std::size_t>(chunks, 1, 1 << 20));
  work.largest_product =
      model.learner->model()->largest_product(static_cast<std::int64_t>(std::min(rows, kChunk)));
  const runtime::ThreadPlan plan = runtime::apply_thread_plan(budget, work, "chunks of rows");
  return std::make_unique<runtime::WorkerPool>(plan.workers);
}

std::vector<std::string> dictionary_names(const data::Dictionary& d) {
  std::vector<std::string> out;
  out.reserve(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) out.push_back(d.name(static_cast<std::int32_t>(i)));
  return out;
}

// `hint`, when given, follows the "did you mean" and says what to do instead.
[[noreturn]] void unknown(const std::string& what, const std::string& name,
                          const data::Dictionary& known, const std::string& where,
                          const std::string& hint = "") {
  std::string message = "no " + what + " '" + name + "' in " + where;
  const std::string suggestion = closest_match(name, dictionary_names(known));
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  if (!hint.empty()) message += ": " + hint;
  throw DataError(message);
}

std::string number(double v) {
  return csv_number(v);
}

// Distinct scores as the CSV prints them: scores that print alike look tied to whoever reads
// the output, and a recommendation ranks them by item id, not by the model.
std::size_t distinct_scores(const std::vector<double>& scores) {
  std::vector<std::string> printed;
  printed.reserve(scores.size());
  for (double v : scores) printed.push_back(number(v));
  std::sort(printed.begin(), printed.end());
  return static_cast<std::size_t>(std::unique(printed.begin(), printed.end()) - printed.begin());
}

// All scores, or most (at most one distinct value per two), alike.
bool mostly_tied(std::size_t distinct, std::size_t n) {
  return n >= 2 && distinct * 2 <= n;
}

// Why scores tie, from what the model's config gives it to tell items apart: its inputs are
// the same for items without attributes and without history.
std::string tied_scores_cause(const config::Config& c) {
  std::string why =
      "the model tells items apart only by their attributes and history, and the tied ones "
      "differ in neither";
  const bool item_table =
      std::any_of(c.data.side_tables.begin(), c.data.side_tables.end(),
                  [](const config::SideTable& t) { return t.join == config::JoinKey::kItem; });
  if (!item_table)
    why += "; this config maps no item attributes (an item table in data.side_tables)";
  if (c.features.aggregate_rows == config::AggregateRows::kTraining)
    why +=
        "; under features.aggregate_rows = \"training\" a category held out as new, or new to "
        "the log, has no history (\"before_cutoff\" with a split.time_cutoff keeps it)";
  else
    why += "; items nobody interacted with before split.time_cutoff have no history";
  return why;
}

// Under a launch: DistributedError on every rank unless all score the same rows with the same
// model (by content).
void require_same_prediction(const runtime::WorkShare& share, const ScoringModel& model,
                             const std::string& input) {
  if (!share.sharded()) return;
  share.require_same_request(
      "predict", nlohmann::json::object(),
      {{"checkpoint", file_fingerprint(model.path)}, {"input", file_fingerprint(input)}});
}

// The task an adapted model was adapted to; "" for a run's meta-learned init.
std::string adapted_task(const ScoringModel& model) {
  if (model.kind != run::kCheckpointKindAdapted) return "";
  const auto it = model.progress.find("task");
  return it != model.progress.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::int64_t warn_about_other_tasks(const ScoringModel& model,
                                    const std::vector<std::string>& tasks,
                                    const std::string& outputs) {
  const std::string own = adapted_task(model);
  if (own.empty()) return 0;
  const auto others = std::count_if(tasks.begin(), tasks.end(),
                                    [&](const std::string& task) { return task != own; });
  if (others > 0)
    spdlog::warn(
        "{} of {} row(s) belong to other tasks than '{}', the task '{}' was adapted to: their "
        "{} come from a model adapted to another task (give them to that task's adapted model, "
        "or to the run directory)",
        others, tasks.size(), own, model.path, outputs);
  return static_cast<std::int64_t>(others);
}

RowScores score_rows(const PredictOptions& o) {
  if (o.input.empty()) throw UsageError("predict needs --input rows.csv (or --recommend)");
  const runtime::WorkShare share(o.group);
  runtime::ThreadBudget budget = runtime::configure_compute(o.threads);
  share.share_cores(budget);
  std::unique_ptr<ScoringModel> model;
  std::unique_ptr<LoadedLog> loaded;
  share.together("reading the model and --input", [&] {
    model = load_scoring_model(o.checkpoint, o.device);
    loaded = load_log(*model, o.input, o.format, o.threads);
  });
  require_same_prediction(share, *model, o.input);
  const data::PurchaseLog& log = loaded->log;
  const features::FeatureEncoder encoder = model->features.bind(log);
  const auto workers = scoring_workers(budget, *model, log.size());

  const tasks::Task rows = every_row(log);
  const Outputs out = score_examples(*model, encoder, rows, *workers, share);

  RowScores s;
  s.label_kind = model->label_kind;
  s.model_kind = model->kind;
  const KeyColumns keys = key_columns(model->config, log);
  s.user_column = keys.user;
  s.item_column = keys.item;
  s.task_column = keys.task;
  s.has_user = keys.has_user;
  s.has_item = keys.has_item;
  s.rows_read = loaded->report.rows_read;
  s.rows_skipped = loaded->report.rows_rejected;
  s.rows.reserve(log.size());
  for (std::size_t r = 0; r < log.size(); ++r) {
    RowScore row;
    RowKey key = row_key(log, r);
    row.user = std::move(key.user);
    row.item = std::move(key.item);
    row.task = std::move(key.task);
    row.score = out.score[r];
    if (model->label_kind == LabelKind::kMulticlass) {
      const auto c = static_cast<std::size_t>(out.cls[r]);
      row.class_name =
          c < model->class_names.size() ? model->class_names[c] : "class_" + std::to_string(c);
    }
    s.rows.push_back(std::move(row));
  }
  spdlog::info("scored {} row(s) with the {} model '{}'", s.rows.size(),
               model->kind == run::kCheckpointKindAdapted ? "adapted" : "meta-learned (unadapted)",
               model->path);
  std::vector<std::string> tasks;
  tasks.reserve(s.rows.size());
  for (const RowScore& row : s.rows) tasks.push_back(row.task);
  warn_about_other_tasks(*model, tasks, "scores");
  if (const std::size_t distinct = distinct_scores(out.score);
      mostly_tied(distinct, out.score.size()))
    spdlog::warn("the {} rows got only {}: {}", out.score.size(),
                 count_of(static_cast<long long>(distinct), "distinct score"),
                 tied_scores_cause(model->config));
  return s;
}

std::vector<Recommendation> recommend(const RecommendOptions& o) {
  if (o.users.empty()) throw UsageError("--recommend needs --user ID (repeatable)");
  if (o.top_k < 1) throw UsageError("--top-k " + std::to_string(o.top_k) + ": must be >= 1");
  const runtime::ThreadBudget budget = runtime::configure_compute(o.threads);
  auto model = load_scoring_model(o.checkpoint, o.device);
  if (model->label_kind == LabelKind::kMulticlass)
    throw UsageError("--recommend ranks items by a purchase probability or a predicted value; '" +
                     model->path + "' is a multiclass model");
  // An adapted model is its task's model: it ranks that task's items (the default --task), and
  // ranking another task's items with it would silently serve the wrong category's model.
  const std::string own_task = adapted_task(*model);
  const std::string task_name = o.task.empty() ? own_task : o.task;
  if (task_name.empty())
    throw UsageError("--recommend needs --task NAME (or an adapted model, which knows its task)");
  if (!own_task.empty() && task_name != own_task)
    throw UsageError("'" + model->path + "' was adapted to task '" + own_task +
                     "' and ranks only its items; for '" + task_name +
                     "', adapt to it first (metalearn adapt --checkpoint RUN --task '" + task_name +
                     "', with --support-csv ROWS.csv for a category the log does not have) and "
                     "recommend with that model, or use the run directory (its meta-learned "
                     "init, unadapted)");
  auto loaded = load_log(*model, o.input, o.format, o.threads);
  const data::PurchaseLog& log = loaded->log;
  const std::string where = "'" + join(loaded->report.files, ", ") + "'";
  if (!log.has_user() || !log.has_item())
    throw DataError(
        "--recommend needs data.columns.user and data.columns.item in the model's "
        "config: it ranks items for users");
  const auto task_id = log.tasks.find(task_name);
  if (!task_id)
    unknown("task", task_name, log.tasks, where,
            o.input.empty()
                ? "--recommend ranks the items the run's log holds for a task; to serve a category "
                  "the log does not have, give its rows (the log's columns: users, items, events) "
                  "in a CSV with --input ROWS.csv, after adapting to them with metalearn adapt "
                  "--task '" +
                      task_name +
                      "' --support-csv ROWS.csv (README: \"Serving a new "
                      "category\")"
                : "");

  // The task's catalogue, and who interacted with what in it.
  std::vector<std::int32_t> catalogue;
  std::unordered_set<std::uint64_t> interacted;
  for (std::size_t r = 0; r < log.size(); ++r) {
    if (log.task[r] != *task_id || log.item[r] == data::kNoId) continue;
    catalogue.push_back(log.item[r]);
    if (log.user[r] != data::kNoId) interacted.insert(tasks::pair_key(log.user[r], log.item[r]));
  }
  std::sort(catalogue.begin(), catalogue.end());
  catalogue.erase(std::unique(catalogue.begin(), catalogue.end()), catalogue.end());

  const features::FeatureEncoder encoder = model->features.bind(log);
  const auto workers = scoring_workers(budget, *model, catalogue.size());
  std::vector<Recommendation> out;
  for (const auto& user : o.users) {
    const auto user_id = log.users.find(user);
    if (!user_id) unknown("user", user, log.users, where);
    tasks::Task candidates;
    for (std::int32_t item : catalogue)
      if (!interacted.count(tasks::pair_key(*user_id, item)))
        // No row: row-level features are missing and encode as their training means, as for
        // the sampled negatives of implicit labels.
        candidates.examples.push_back({-1, *user_id, item, 0.0f, data::kNoTime});
    const Outputs scored = score_examples(*model, encoder, candidates, *workers);
    if (const std::size_t distinct = distinct_scores(scored.score);
        mostly_tied(distinct, scored.score.size()))
      spdlog::warn(
          "user '{}': the {} candidate items of task '{}' got only {}, so tied items are ranked "
          "by item id, not by the model: {}",
          user, scored.score.size(), task_name,
          count_of(static_cast<long long>(distinct), "distinct score"),
          tied_scores_cause(model->config));
    std::vector<std::size_t> order(candidates.examples.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (scored.score[a] != scored.score[b]) return scored.score[a] > scored.score[b];
      return log.items.name(candidates.examples[a].item) <
             log.items.name(candidates.examples[b].item);
    });
    const std::size_t k = std::min(order.size(), static_cast<std::size_t>(o.top_k));
    if (k < static_cast<std::size_t>(o.top_k))
      spdlog::warn("user '{}' has only {} item(s) of task '{}' left to recommend (asked {})", user,
                   k, task_name, o.top_k);
    for (std::size_t r = 0; r < k; ++r)
      out.push_back({user, static_cast<int>(r + 1),
                     log.items.name(candidates.examples[order[r]].item), scored.score[order[r]]});
  }
  return out;
}

TextPredictions predict_texts(const TextPredictOptions& o) {
  if (o.input.empty()) throw UsageError("predict needs --input texts.csv");
  if (o.top_k < 1) throw UsageError("--top-k " + std::to_string(o.top_k) + ": must be >= 1");
  runtime::configure_compute(o.threads);
  const runtime::WorkShare share(o.group);
  std::unique_ptr<ScoringModel> model;
  TextPredictions p;
  data::TextLoadReport report;
  data::TextDataset rows;
  share.together("reading the model and --input", [&] {
    model = load_scoring_model(o.checkpoint, o.device);
    if (!model->tokenizer) throw UsageError("'" + model->path + "' is not an adapted text model");
    rows = read_text_rows(model->config, {o.input, "--input", o.format}, report, &p.text_column);
  });
  require_same_prediction(share, *model, o.input);
  p.id_column = rows.ids.size() == rows.size() ? kTextIdColumn : "";
  p.classes = static_cast<std::int64_t>(model->class_names.size());
  p.top_k = static_cast<int>(std::min<std::int64_t>(o.top_k, p.classes));
  if (p.top_k < o.top_k)
    spdlog::warn("--top-k {}: the model knows {} classes; each row lists all of them", o.top_k,
                 p.classes);
  p.rows_read = report.rows_read;
  p.rows_skipped = report.rows_rejected;
  // Under a launch each rank classifies its share of the chunks: (class, probability) x top_k
  // per row, filled in for every rank below.
  const std::size_t chunks = (rows.size() + kTextChunk - 1) / kTextChunk;
  const auto [first_chunk, last_chunk] = share.mine(chunks);
  const std::size_t width = 2 * static_cast<std::size_t>(p.top_k);
  std::vector<double> top(rows.size() * width, 0.0);
  for (std::size_t begin = first_chunk * kTextChunk;
       begin < std::min(rows.size(), last_chunk * kTextChunk); begin += kTextChunk) {
    throw_if_interrupted("predicting");
    const std::size_t end = std::min(rows.size(), begin + kTextChunk);
    const std::vector<std::string> texts(rows.texts.begin() + static_cast<std::ptrdiff_t>(begin),
                                         rows.texts.begin() + static_cast<std::ptrdiff_t>(end));
    const torch::Tensor out = model->outputs(text_batch(*model, texts)).to(torch::kFloat64);
    if (!torch::isfinite(out).all().item<bool>())
      throw NumericError("'" + model->path + "' gives NaN or Inf scores: its weights diverged");
    const auto [probability, cls] = torch::softmax(out, 1).topk(p.top_k, 1);
    for (std::int64_t i = 0; i < out.size(0); ++i) {
      double* row = &top[(begin + static_cast<std::size_t>(i)) * width];
      for (int k = 0; k < p.top_k; ++k) {
        row[2 * k] = static_cast<double>(cls[i][k].item<std::int64_t>());
        row[2 * k + 1] = probability[i][k].item<double>();
      }
    }
  }
  share.fill_in(top, width,
                {std::min(rows.size(), first_chunk * kTextChunk),
                 std::min(rows.size(), last_chunk * kTextChunk)});
  for (std::size_t r = 0; r < rows.size(); ++r) {
    TextPrediction row{p.id_column.empty() ? "" : rows.ids[r], rows.texts[r], {}};
    const double* figures = &top[r * width];
    for (int k = 0; k < p.top_k; ++k)
      row.top.emplace_back(model->class_names[static_cast<std::size_t>(figures[2 * k])],
                           figures[2 * k + 1]);
    p.rows.push_back(std::move(row));
  }
  spdlog::info("classified {} text(s) among the {} classes of '{}'", p.rows.size(), p.classes,
               model->path);
  return p;
}

data::TextDataset read_text_rows(const config::Config& run, const config::InputFile& input,
                                 data::TextLoadReport& report, std::string* text_column) {
  data::TextDatasetSpec spec = pipeline::text_dataset_spec(config::input_config(run, input));
  spec.labelled = false;
  spec.group_column.clear();
  spec.id_column = kTextIdColumn;
  data::TextDataset rows = data::load_text_dataset(spec, report);
  pipeline::warn_about_text_load(report);
  if (text_column) *text_column = spec.text_column;
  return rows;
}

void write_text_predictions_csv(const TextPredictions& p, std::ostream& out) {
  std::vector<std::string> header;
  if (!p.id_column.empty()) header.push_back(p.id_column);
  header.push_back(p.text_column);
  for (int k = 1; k <= p.top_k; ++k) {
    header.push_back("class_" + std::to_string(k));
    header.push_back("probability_" + std::to_string(k));
  }
  for (std::size_t c = 0; c < header.size(); ++c) out << (c ? "," : "") << csv_cell(header[c]);
  out << "\n";
  for (const auto& r : p.rows) {
    if (!p.id_column.empty()) out << csv_cell(r.id) << ",";
    out << csv_cell(r.text);
    for (const auto& [name, probability] : r.top)
      out << "," << csv_cell(name) << "," << number(probability);
    out << "\n";
  }
}

void write_scores_csv(const RowScores& s, std::ostream& out) {
  std::vector<std::string> header;
  if (s.has_user) header.push_back(s.user_column);
  if (s.has_item) header.push_back(s.item_column);
  header.push_back(s.task_column);
  if (s.label_kind == LabelKind::kMulticlass) header.push_back("class");
  header.push_back("score");
  for (std::size_t c = 0; c < header.size(); ++c) out << (c ? "," : "") << csv_cell(header[c]);
  out << "\n";
  for (const auto& r : s.rows) {
    if (s.has_user) out << csv_cell(r.user) << ",";
    if (s.has_item) out << csv_cell(r.item) << ",";
    out << csv_cell(r.task) << ",";
    if (s.label_kind == LabelKind::kMulticlass) out << csv_cell(r.class_name) << ",";
    out << number(r.score) << "\n";
  }
}

void write_recommendations_csv(const std::vector<Recommendation>& recommendations,
                               std::ostream& out) {
  out << "user,rank,item,score\n";
  for (const auto& r : recommendations)
    out << csv_cell(r.user) << "," << r.rank << "," << csv_cell(r.item) << "," << number(r.score)
        << "\n";
}

data::PurchaseLog read_input_rows(const config::Config& run, const config::InputFile& input,
                                  int threads, data::LoadReport& report) {
  config::Config config = run;
  config.run.threads = threads;
  data::PurchaseLog log = data::load_input_file(config, input, report);
  data::warn_about_load(report);
  return log;
}

tasks::Task every_row(const data::PurchaseLog& log) {
  tasks::Task rows;
  rows.examples.reserve(log.size());
  for (std::size_t r = 0; r < log.size(); ++r)
    rows.examples.push_back(
        {static_cast<std::int64_t>(r), log.user[r], log.item[r], 0.0f, log.timestamp[r]});
  return rows;
}

KeyColumns key_columns(const config::Config& run, const data::PurchaseLog& log) {
  const auto& columns = run.data.columns;
  return {column_title(columns.user, "user"), column_title(columns.item, "item"),
          column_title(columns.task, "task"), log.has_user(), log.has_item()};
}

RowKey row_key(const data::PurchaseLog& log, std::size_t r) {
  auto name = [](const data::Dictionary& d, std::int32_t id) {
    return id == data::kNoId ? std::string() : d.name(id);
  };
  return {name(log.users, log.user[r]), name(log.items, log.item[r]), name(log.tasks, log.task[r])};
}

std::string csv_cell(const std::string& s) {
  // RFC 4180: quote a cell holding the delimiter, a quote or a line break.
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double v) {
  return fmt::format("{:.7g}", v);
}

void write_output(const std::string& path, std::ostream& standard_output,
                  const std::function<void(std::ostream&)>& write) {
  if (path.empty()) {
    write(standard_output);
    standard_output.flush();  // a failed write is reported by run_cli, for every command
    return;
  }
  write_file_atomically(path, write);
}

}  // namespace ml::inference
