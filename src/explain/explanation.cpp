// Explaining a model's scores of a rows file: see explanation.hpp.
#include "explain/explanation.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <system_error>

#include <stdlib.h>  // mkdtemp, getenv

#include "data/text_dataset.hpp"
#include "explain/integrated_gradients.hpp"
#include "explain/model_input.hpp"
#include "inference/adaptation.hpp"
#include "inference/adapted_model.hpp"
#include "inference/prediction.hpp"
#include "meta/meta_learner.hpp"
#include "models/batch.hpp"
#include "models/transformer.hpp"
#include "pipeline/run_data.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/run_files.hpp"
#include "run/run_layout.hpp"
#include "run/validated_adaptation.hpp"
#include "runtime/device.hpp"
#include "tasks/episode_sampler.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"
#include "util/strings.hpp"

namespace ml::explain {

namespace {

using inference::ScoringModel;
using tasks::LabelKind;

namespace fs = std::filesystem;

// Before any work: an output that is --input or another output's file, or cannot be written.
void check_outputs(const ExplainOptions& o) {
  for (std::size_t i = 0; i < o.outputs.size(); ++i) {
    const auto& [option, path] = o.outputs[i];
    if (!o.input.empty() && same_file(path, o.input))
      throw UsageError(option + " '" + path + "' is the --input file; give another file name");
    for (std::size_t j = 0; j < i; ++j)
      if (same_file(path, o.outputs[j].second))
        throw UsageError(option + " '" + path + "' is also " + o.outputs[j].first +
                         "'s file; give each output its own");
    check_writable(path);
  }
}

// An output over a loaded model's run: its checkpoint, the data it reads (log, side and
// embedding tables), or a file of its run directory (another checkpoint, its records).
void check_outputs_spare(const ExplainOptions& o, const ScoringModel& m) {
  const run::RunFiles files = run::run_files(m.path, m.config);
  for (const auto& [option, path] : o.outputs) run::refuse_output_over_run(files, option, path);
}
using torch::Tensor;

// The rows of --input as one model encodes them, with what names them.
struct EncodedRows {
  models::Batch batch;
  std::vector<std::string> key_columns;
  std::vector<std::vector<std::string>> keys;                  // per row
  std::vector<std::pair<std::string, std::string>> user_item;  // per row (purchase logs)
  std::int64_t rows_read = 0, rows_skipped = 0;
};

EncodedRows encode_input(const ScoringModel& model, const ExplainOptions& o) {
  EncodedRows e;
  const config::InputFile input{o.input, "--input", o.format};
  if (model.tokenizer) {
    // As predict classifies texts: the run's text column, an id column kept when present.
    data::TextLoadReport report;
    std::string text_column;
    const data::TextDataset rows =
        inference::read_text_rows(model.config, input, report, &text_column);
    const bool ids = rows.ids.size() == rows.size() && rows.size() > 0;
    if (ids) e.key_columns.push_back(inference::kTextIdColumn);
    e.key_columns.push_back(text_column);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::vector<std::string> key;
      if (ids) key.push_back(rows.ids[r]);
      key.push_back(rows.texts[r]);
      e.keys.push_back(std::move(key));
    }
    e.batch = inference::text_batch(model, rows.texts);
    e.rows_read = report.rows_read;
    e.rows_skipped = report.rows_rejected;
    return e;
  }
  data::LoadReport report;
  const data::PurchaseLog log = inference::read_input_rows(model.config, input, o.threads, report);
  const inference::KeyColumns columns = inference::key_columns(model.config, log);
  if (columns.has_user) e.key_columns.push_back(columns.user);
  if (columns.has_item) e.key_columns.push_back(columns.item);
  e.key_columns.push_back(columns.task);
  for (std::size_t r = 0; r < log.size(); ++r) {
    inference::RowKey key = inference::row_key(log, r);
    std::vector<std::string> cells;
    if (columns.has_user) cells.push_back(key.user);
    if (columns.has_item) cells.push_back(key.item);
    cells.push_back(key.task);
    e.keys.push_back(std::move(cells));
    e.user_item.emplace_back(std::move(key.user), std::move(key.item));
  }
  const features::FeatureEncoder encoder = model.features.bind(log);
  const tasks::Task task = inference::every_row(log);
  std::vector<std::size_t> all(log.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  e.batch = models::make_batch(encoder, model.features.dense_dim(), model.features.id_fields(),
                               task, all);
  e.rows_read = report.rows_read;
  e.rows_skipped = report.rows_rejected;
  return e;
}

// An adapted purchase-log model's own query rows: the episode adapt drew from the run's log
// (the task, shots and episode index its checkpoint records), encoded as adapt encoded them.
// UsageError when the model has no such record (a run, a text model, support from a CSV).
// `prepared`: the run's data when the caller has read it already (nullptr: read here).
EncodedRows own_query_rows(const ScoringModel& model, const pipeline::RunData* prepared = nullptr) {
  const nlohmann::json& p = model.progress;
  auto recorded = [&](const char* key) {
    const auto it = p.find(key);
    return it == p.end() ? nlohmann::json() : *it;
  };
  const nlohmann::json task_name = recorded("task"), shots = recorded("shots"),
                       episode = recorded("episode");
  if (model.kind != run::kCheckpointKindAdapted || model.tokenizer ||
      recorded("support_source") != "episode" || !task_name.is_string() ||
      !episode.is_number_unsigned() || !(shots.is_number_integer() || shots == "all"))
    throw UsageError(
        "explain needs --input ROWS.csv: only a purchase-log model adapted on an episode of its "
        "run's log (adapt --task or --all-new) can be explained on its own query rows; '" +
        model.path + "' is not one");
  std::unique_ptr<pipeline::RunData> loaded;
  if (!prepared) {
    spdlog::info("reading the run's log for the query rows '{}' was adapted on", model.path);
    loaded = pipeline::prepare_run_data(model.config, &model.features);
    prepared = loaded.get();
  }
  const pipeline::RunData* data = prepared;
  const tasks::Task* task = data->tasks.find(task_name.get<std::string>());
  if (!task)
    throw DataError("the run's log no longer holds task '" + task_name.get<std::string>() +
                    "', which '" + model.path + "' was adapted to; give --input ROWS.csv");
  tasks::EpisodeShape shape = tasks::episode_shape(model.config.task);
  shape.support = shots == "all" ? config::kSupportAll : shots.get<int>();
  const tasks::EpisodeSampler sampler(data->tasks.kind, shape, model.config.seed);
  const tasks::Episode drawn = sampler.sample(*task, episode.get<std::uint64_t>());
  const nlohmann::json query_size = recorded("query_size");
  if (query_size.is_number_integer() && query_size.get<std::size_t>() != drawn.query.size())
    throw DataError("the run's log gives task '" + task->name + "' another query (" +
                    std::to_string(drawn.query.size()) + " rows) than '" + model.path +
                    "' was adapted with (" + query_size.dump() +
                    "): the log changed; give --input ROWS.csv");
  EncodedRows e;
  e.batch = meta::make_task_batch(data->features, data->encoder, drawn, torch::kCPU).query;
  // The same size is not the same rows: rows added to or removed from a task whose query is
  // capped at task.query draw other rows of the same count.
  const nlohmann::json checksum = recorded("query_checksum");
  if (checksum.is_string() && checksum.get<std::string>() != inference::rows_checksum(e.batch))
    throw DataError("the run's log gives task '" + task->name + "' other query rows than '" +
                    model.path +
                    "' was adapted with (their checksums differ): the log changed; give --input "
                    "ROWS.csv");
  const inference::KeyColumns columns = inference::key_columns(model.config, data->log);
  if (columns.has_user) e.key_columns.push_back(columns.user);
  if (columns.has_item) e.key_columns.push_back(columns.item);
  e.key_columns.push_back(columns.task);
  auto name = [](const data::Dictionary& d, std::int32_t id) {
    return id == data::kNoId ? std::string() : d.name(id);
  };
  for (std::size_t q : drawn.query) {
    const tasks::Example& example = task->examples[q];
    std::string user = name(data->log.users, example.user),
                item = name(data->log.items, example.item);
    std::vector<std::string> cells;
    if (columns.has_user) cells.push_back(user);
    if (columns.has_item) cells.push_back(item);
    cells.push_back(task->name);
    e.keys.push_back(std::move(cells));
    e.user_item.emplace_back(std::move(user), std::move(item));
  }
  e.rows_read = static_cast<std::int64_t>(drawn.query.size());
  return e;
}

// How `b` reads other inputs than `a`, in words ("" when it reads the same), so that their
// attributions compare feature by feature (or token by token) only when they do.
std::string input_difference(const ScoringModel& a, const ScoringModel& b) {
  if (a.tokenizer || b.tokenizer) {
    if (!a.tokenizer || !b.tokenizer) return "one reads text and the other a purchase log";
    if (a.tokenizer->to_bytes() != b.tokenizer->to_bytes()) return "its tokenizer differs";
    if (pipeline::token_length(a.config) != pipeline::token_length(b.config))
      return "its token length differs";
    return "";
  }
  if (a.config.model.type != b.config.model.type)
    return "its model type differs (" + enum_name(b.config.model.type) + " against " +
           enum_name(a.config.model.type) + ": one attributes id fields the other ignores)";
  if (a.features.dense_names() != b.features.dense_names())
    return "its dense features differ (" + std::to_string(b.features.dense_names().size()) +
           " against " + std::to_string(a.features.dense_names().size()) + ")";
  if (a.features.id_field_names() != b.features.id_field_names()) return "its id fields differ";
  if (a.features.id_field_cardinalities() != b.features.id_field_cardinalities())
    return "its id vocabularies differ (another log, split or seed gives other ids)";
  return "";
}

// Whether rows encoded by one model are what the other would encode from the same file: the
// same inputs, columns, row policy and fitted statistics (a run and the models adapted from it).
bool same_encoding(const ScoringModel& a, const ScoringModel& b) {
  if (!input_difference(a, b).empty()) return false;
  config::Json ca, cb;
  config::to_json(ca, a.config);
  config::to_json(cb, b.config);
  if (ca["data"] != cb["data"]) return false;
  if (a.tokenizer) return true;
  nlohmann::json fa, fb;
  to_json(fa, a.features);
  to_json(fb, b.features);
  return fa == fb;
}

// The output column explained per row: --class by name, else the predicted class; 0 for a
// single output. `outputs` [n, C].
Tensor explained_classes(const ScoringModel& model, const Tensor& outputs,
                         const std::string& class_name) {
  const std::int64_t n = outputs.size(0);
  if (model.label_kind != LabelKind::kMulticlass || outputs.size(1) == 1)
    return torch::zeros({n}, torch::kInt64);
  if (class_name.empty()) return outputs.argmax(1);
  const auto& names = model.class_names;
  const auto it = std::find(names.begin(), names.end(), class_name);
  if (it == names.end()) {
    std::string message = "--class '" + class_name + "': '" + model.path + "' has no such class";
    const std::string suggestion = closest_match(class_name, names);
    if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
    throw UsageError(message + "; its classes are: " + join(names, ", "));
  }
  return torch::full({n}, static_cast<std::int64_t>(it - names.begin()), torch::kInt64);
}

std::string class_name_of(const ScoringModel& model, std::int64_t c) {
  const auto i = static_cast<std::size_t>(c);
  return i < model.class_names.size() ? model.class_names[i] : "class_" + std::to_string(c);
}

void check_steps(int steps) {
  if (steps < 1 || steps > kMaxSteps)
    throw UsageError("--steps " + std::to_string(steps) + ": must be between 1 and " +
                     std::to_string(kMaxSteps) + " (Gauss-Legendre points per row)");
}

double tolerance_for(double score, double baseline_score) {
  return std::max(kRelativeTolerance * std::abs(score - baseline_score), kGapFloor);
}

std::vector<FeatureImportance> importance_of(const std::vector<RowExplanation>& rows) {
  struct Sum {
    double abs = 0;
    std::int64_t rows = 0;
    std::string value;  // the first row's
    bool constant = true;
  };
  std::map<std::string, Sum> sums;
  std::vector<std::string> order;  // first appearance
  for (const auto& row : rows) {
    std::map<std::string, double> own;  // a token may occur twice in a row: counted once
    for (const auto& a : row.attributions) own[a.feature] += std::abs(a.attribution);
    for (const auto& a : row.attributions) {
      auto it = own.find(a.feature);
      if (it == own.end()) continue;
      auto [entry, added] = sums.emplace(a.feature, Sum{0.0, 0, a.value, true});
      if (added) order.push_back(a.feature);
      entry->second.abs += it->second;
      entry->second.rows += 1;
      entry->second.constant = entry->second.constant && entry->second.value == a.value;
      own.erase(it);
    }
  }
  std::vector<FeatureImportance> out;
  const double n = rows.empty() ? 1.0 : static_cast<double>(rows.size());
  for (const auto& f : order) {
    const Sum& sum = sums[f];
    out.push_back({f, sum.abs / n, sum.rows, sum.constant && sum.rows >= 2});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const FeatureImportance& a, const FeatureImportance& b) {
                     return a.mean_abs > b.mean_abs;
                   });
  return out;
}

// Integrated Gradients of every row of `rows` under `model`.
ModelExplanation explain_model(const ScoringModel& model, const EncodedRows& rows,
                               const ExplainOptions& o, const std::string& kind) {
  ModelExplanation m;
  m.checkpoint = model.path;
  m.kind = kind;
  const std::int64_t n = rows.batch.size();
  if (n == 0) return m;
  const Tensor outputs = model.outputs(rows.batch).to(torch::kFloat64);
  if (!torch::isfinite(outputs).all().item<bool>())
    throw NumericError("'" + model.path + "' gives NaN or Inf scores: its weights diverged");
  const Tensor classes = explained_classes(model, outputs, o.class_name);
  const ModelInput input = model_input(model, rows.batch, classes, rows.user_item);
  const Attributions ig = integrated_gradients(input.output, input.input, input.baseline, o.steps);
  const Tensor by_segment = sum_by_segment(ig.attributions, input.segment, input.max_segments)
                                .to(torch::kCPU)
                                .contiguous();
  const Tensor score = ig.output.to(torch::kCPU).contiguous();
  const Tensor base = ig.baseline_output.to(torch::kCPU).contiguous();
  const Tensor gap = ig.gap.to(torch::kCPU).contiguous();
  Tensor probability;
  if (model.label_kind == LabelKind::kBinary) probability = torch::sigmoid(outputs.select(1, 0));
  if (model.label_kind == LabelKind::kMulticlass)
    probability = torch::softmax(outputs, 1).gather(1, classes.unsqueeze(1)).squeeze(1);
  for (std::int64_t r = 0; r < n; ++r) {
    RowExplanation row;
    row.key = rows.keys[static_cast<std::size_t>(r)];
    if (model.label_kind == LabelKind::kMulticlass)
      row.class_name = class_name_of(model, classes[r].item<std::int64_t>());
    row.score = score[r].item<double>();
    row.baseline_score = base[r].item<double>();
    row.probability = probability.defined() ? probability[r].item<double>()
                                            : std::numeric_limits<double>::quiet_NaN();
    row.gap = gap[r].item<double>();
    row.tolerance = tolerance_for(row.score, row.baseline_score);
    const auto& segments = input.segments[static_cast<std::size_t>(r)];
    const double* values = by_segment.data_ptr<double>() + r * by_segment.size(1);
    for (std::size_t s = 0; s < segments.size(); ++s)
      row.attributions.push_back({segments[s].name, segments[s].value, values[s]});
    std::stable_sort(row.attributions.begin(), row.attributions.end(),
                     [](const FeatureAttribution& a, const FeatureAttribution& b) {
                       return std::abs(a.attribution) > std::abs(b.attribution);
                     });
    m.max_gap = std::max(m.max_gap, row.gap);
    if (row.gap > row.tolerance) ++m.rows_over_tolerance;
    m.rows.push_back(std::move(row));
  }
  m.importance = importance_of(m.rows);
  return m;
}

std::vector<FeatureChange> changes_between(const ModelExplanation& before,
                                           const ModelExplanation& after) {
  std::map<std::string, FeatureChange> by_name;
  for (const auto& f : after.importance)
    by_name[f.feature] = {f.feature, 0.0, f.mean_abs, f.constant};
  for (const auto& f : before.importance) {
    auto [it, added] =
        by_name.emplace(f.feature, FeatureChange{f.feature, f.mean_abs, 0.0, f.constant});
    if (!added) it->second.before = f.mean_abs;
  }
  std::vector<FeatureChange> out;
  for (auto& [name, change] : by_name) out.push_back(change);
  std::stable_sort(out.begin(), out.end(), [](const FeatureChange& a, const FeatureChange& b) {
    return std::abs(a.change()) > std::abs(b.change());
  });
  return out;
}

void log_completeness(const ModelExplanation& m, const std::string& what, int steps) {
  spdlog::info(
      "{}: {} row(s) explained with {} Gauss-Legendre step(s); largest completeness gap {:.3g} "
      "(|sum of attributions - (score - baseline score)|), tolerance {:g}% of |score - baseline "
      "score| or {:g}, whichever is larger; {} row(s) over it",
      what, m.rows.size(), steps, m.max_gap, kRelativeTolerance * 100, kGapFloor,
      m.rows_over_tolerance);
  if (m.rows_over_tolerance > 0)
    spdlog::warn(
        "{}: {} of {} row(s) have a completeness gap over the tolerance: their attributions "
        "approximate the integral coarsely; raise --steps (now {})",
        what, m.rows_over_tolerance, m.rows.size(), steps);
}

std::string explained_words(const ScoringModel& model, const std::string& class_name) {
  switch (model.label_kind) {
    case LabelKind::kBinary:
      return "the logit (log-odds) of the positive label; probability = sigmoid(score)";
    case LabelKind::kRegression:
      return "the predicted value";
    case LabelKind::kMulticlass:
      return class_name.empty() ? "the logit of each row's predicted class"
                                : "the logit of class '" + class_name + "'";
  }
  return "";
}

std::string baseline_words(const ScoringModel& model) {
  if (model.tokenizer)
    return "every token replaced by the padding token's embedding, with the row's attention mask";
  std::string words =
      "every dense input at 0 in the model's input space (the training mean of each "
      "standardised feature, and how a missing value is encoded; 0 = absent for one-hot, "
      "hashed-text and embedding-table inputs)";
  if (!model.config.features.standardize)
    words += " - features.standardize is off in this run, so 0 is the raw value 0, not the mean";
  if (model.learner->model()->id_tables() > 0)
    words += "; each id field's embedding at the mean of its table's rows";
  return words;
}

// The model an adapted checkpoint was adapted from, as it records it: "" with `note` saying why
// there is none to explain.
std::string recorded_source(const ScoringModel& model, std::string& note) {
  if (model.kind != run::kCheckpointKindAdapted) return "";
  if (model.tokenizer) {
    note =
        "a text run's meta-learned model names no classes until it is adapted: there is no "
        "model before adaptation to explain";
    return "";
  }
  if (model.label_kind == LabelKind::kMulticlass) {
    note = "a multiclass run's meta-learned model names no classes until it is adapted";
    return "";
  }
  const auto it = model.progress.find("source_checkpoint");
  if (it == model.progress.end() || !it->is_string()) {
    note = "'" + model.path + "' does not record the run it was adapted from; give --before RUN";
    return "";
  }
  // Recorded as adapt was given it: a relative path meant the folder adapt ran in, which may be
  // any folder above the adapted checkpoint; the first candidate whose training record is the
  // one the adapted model recorded is the model it was adapted from.
  const std::string source = it->get<std::string>();
  std::vector<fs::path> candidates = {source};
  if (fs::path(source).is_relative())
    for (fs::path folder = resolved_path(model.path).parent_path();;
         folder = folder.parent_path()) {
      candidates.push_back(folder / source);
      if (folder == folder.parent_path()) break;
    }
  const auto recorded_progress = model.progress.find("source_progress");
  bool found = false;
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    if (!fs::is_regular_file(candidate, error)) continue;
    found = true;
    if (recorded_progress == model.progress.end()) return candidate.string();
    try {
      if (run::read_checkpoint_meta(candidate.string()).progress == *recorded_progress)
        return candidate.string();
    } catch (const Error&) {
      // Not a readable checkpoint: not the one either.
    }
  }
  note = found ? "the checkpoint at '" + source + "' is not the one '" + model.path +
                     "' was adapted from (its training record differs: another run, or the run "
                     "trained on since); give --before RUN"
               : "the run '" + model.path + "' was adapted from, '" + source +
                     "', is not there (moved or removed); give --before RUN";
  return "";
}

}  // namespace

Explanation explain(const ExplainOptions& o) {
  check_steps(o.steps);
  if (o.top < 1) throw UsageError("--top " + std::to_string(o.top) + ": must be >= 1");
  check_outputs(o);
  runtime::configure_compute(o.threads);
  // From the header first: loading refuses a protonet run with advice to adapt it, which would
  // not help here.
  const std::string path = run::resolve_checkpoint_path(o.checkpoint);
  require_explainable(config::config_from_saved(run::read_checkpoint_meta(path).config), path);
  const auto model = inference::load_scoring_model(path, o.device, "explain");
  require_explainable(*model);
  if (!o.class_name.empty() && model->label_kind != LabelKind::kMulticlass)
    throw UsageError("--class names the class whose logit is explained; '" + model->path +
                     "' has one output (" + tasks::label_kind_name(model->label_kind) + ")");

  Explanation e;
  check_outputs_spare(o, *model);
  e.label_kind = tasks::label_kind_name(model->label_kind);
  e.explained = explained_words(*model, o.class_name);
  e.baseline = baseline_words(*model);
  e.steps = o.steps;
  if (model->kind == run::kCheckpointKindAdapted && !model->tokenizer) {
    const auto it = model->progress.find("task");
    if (it != model->progress.end() && it->is_string()) e.task = it->get<std::string>();
  }
  // The model before adaptation, loaded and checked before any row is read or explained.
  const std::string before = o.before.empty() ? recorded_source(*model, e.before_note) : o.before;
  if (!e.before_note.empty()) spdlog::warn("no explanation before adaptation: {}", e.before_note);
  std::unique_ptr<ScoringModel> earlier;
  if (!before.empty()) {
    earlier = inference::load_scoring_model(before, o.device, "explain");
    check_outputs_spare(o, *earlier);
    require_explainable(*earlier);
    if (earlier->label_kind != model->label_kind)
      throw UsageError("--before '" + earlier->path + "' is a " +
                       tasks::label_kind_name(earlier->label_kind) + " model and '" + model->path +
                       "' a " + tasks::label_kind_name(model->label_kind) +
                       " one: their scores cannot be compared");
    if (const std::string difference = input_difference(*model, *earlier); !difference.empty())
      throw UsageError("--before '" + earlier->path + "' reads other inputs than '" + model->path +
                       "': " + difference +
                       "; attributions compare feature by feature only between models of one run");
  }

  // Without --input an adapted model is explained on the query rows it was adapted with.
  const bool own_query = o.input.empty();
  const EncodedRows rows = own_query ? own_query_rows(*model) : encode_input(*model, o);
  if (!model->tokenizer) {
    std::vector<std::string> tasks;  // the task column is each row's last key cell
    for (const auto& key : rows.keys) tasks.push_back(key.empty() ? "" : key.back());
    e.rows_of_other_tasks = inference::warn_about_other_tasks(*model, tasks, "attributions");
  }
  e.key_columns = rows.key_columns;
  e.rows_read = rows.rows_read;
  e.rows_skipped = rows.rows_skipped;
  e.model = explain_model(*model, rows, o, model->kind);
  log_completeness(e.model, "'" + model->path + "'", o.steps);

  if (!earlier) return e;
  // Read once where one encoding serves both (also an --input that can be read only once).
  const EncodedRows earlier_rows =
      own_query || same_encoding(*earlier, *model) ? rows : encode_input(*earlier, o);
  if (earlier_rows.batch.size() != rows.batch.size())
    throw DataError("--input '" + o.input + "' gives " + std::to_string(earlier_rows.batch.size()) +
                    " row(s) under the config of '" + earlier->path + "' and " +
                    std::to_string(rows.batch.size()) + " under that of '" + model->path +
                    "' (their data.bad_rows or columns differ): explain them separately");
  e.before = explain_model(*earlier, earlier_rows, o, "before");
  log_completeness(*e.before, "before adaptation ('" + earlier->path + "')", o.steps);
  e.changes = changes_between(*e.before, e.model);
  std::vector<std::string> top;
  for (std::size_t i = 0; i < std::min<std::size_t>(5, e.changes.size()); ++i) {
    const FeatureChange& c = e.changes[i];
    top.push_back(fmt::format("{} {:.3g} -> {:.3g}", c.feature, c.before, c.after));
  }
  spdlog::info("what adaptation changed most (mean |attribution| before -> after): {}",
               join(top, ", "));
  return e;
}

namespace {

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

// A new folder under the system's temporary one, removed with its contents when it goes.
class TemporaryFolder {
 public:
  TemporaryFolder() {
    // TMPDIR as mktemp reads it: unset or empty means /tmp.
    const char* chosen = std::getenv("TMPDIR");
    const fs::path base = chosen && *chosen ? fs::path(chosen) : fs::path("/tmp");
    std::string pattern = (base / "metalearn-importance-XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      throw IoError("cannot create a folder for the adapted models in '" + base.string() +
                    "' (TMPDIR): " + std::strerror(errno));
    path_ = pattern;
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Over the tasks: each feature's per-task mean |attribution| averaged, before and after.
std::vector<FeatureChange> mean_over_tasks(const std::vector<TaskImportance>& tasks) {
  std::map<std::string, FeatureChange> by_name;
  std::vector<std::string> order;  // first appearance, for ties
  auto add = [&](const FeatureImportance& f, double FeatureChange::*field) {
    auto [it, added] = by_name.emplace(f.feature, FeatureChange{f.feature, 0.0, 0.0, true});
    if (added) order.push_back(f.feature);
    it->second.*field += f.mean_abs;
    it->second.constant = it->second.constant && f.constant;
  };
  for (const TaskImportance& t : tasks) {
    for (const FeatureImportance& f : t.after.importance) add(f, &FeatureChange::after);
    if (t.before)
      for (const FeatureImportance& f : t.before->importance) add(f, &FeatureChange::before);
  }
  std::vector<FeatureChange> out;
  const double n = tasks.empty() ? 1.0 : static_cast<double>(tasks.size());
  for (const std::string& feature : order) {
    FeatureChange c = by_name[feature];
    c.before /= n;
    c.after /= n;
    out.push_back(c);
  }
  // What the model leaned on before or after, so a feature adaptation removed is shown too.
  std::stable_sort(out.begin(), out.end(), [](const FeatureChange& a, const FeatureChange& b) {
    return std::max(a.before, a.after) > std::max(b.before, b.after);
  });
  return out;
}

}  // namespace

std::vector<FeatureChange> task_features(const TaskImportance& task) {
  std::vector<FeatureChange> features = task.changes;  // every feature where there is a before
  if (!task.before)
    for (const FeatureImportance& f : task.after.importance)
      features.push_back({f.feature, 0.0, f.mean_abs, f.constant});
  return features;
}

void check_new_tasks_explainable(const std::string& checkpoint) {
  const std::string path = run::resolve_checkpoint_path(checkpoint);
  const run::CheckpointMeta meta = run::read_checkpoint_meta(path);
  const config::Config config = config::config_from_saved(meta.config);
  if (config.text_run())
    throw UsageError("the importance of each new task is for purchase-log runs; '" + path +
                     "' is a text run (data.text): adapt it and explain the adapted model with "
                     "'metalearn explain'");
  require_explainable(config, path);
  // What adapting the new tasks needs besides the run: its chosen settings, where there are
  // some, and a temporary folder.
  const std::string chosen =
      run::RunLayout(run::run_dir_of(checkpoint)).validated_adaptation().string();
  if (const auto settings = run::read_validated_adaptation(chosen))
    run::check_validated_adaptation(chosen, *settings, meta.config);
  const TemporaryFolder probe;
}

NewTaskImportance explain_new_tasks(const std::string& checkpoint, int steps,
                                    const std::string& device, int threads) {
  check_steps(steps);
  check_new_tasks_explainable(checkpoint);
  const TemporaryFolder folder;
  inference::AdaptOptions a;
  a.checkpoint = checkpoint;
  a.all_new = true;
  a.out_dir = folder.path();
  a.numbered_file_names = true;  // "Bin Bags" and "Bin&Bags" are two tasks
  a.device = device;
  a.threads = threads;
  spdlog::info("adapting every new task of '{}' to explain it before and after adaptation",
               checkpoint);
  const inference::AdaptSummary adapted = inference::adapt(a);

  NewTaskImportance out;
  out.checkpoint = adapted.source_checkpoint;
  out.settings_source = adapted.settings_source;
  out.steps = steps;
  ExplainOptions o;
  o.steps = steps;
  o.device = device;
  o.threads = threads;
  std::unique_ptr<pipeline::RunData> data;
  std::unique_ptr<ScoringModel> source;
  for (const inference::TaskAdaptation& t : adapted.tasks) {
    const auto model = inference::load_scoring_model(t.checkpoint, device, "explain");
    if (!data) {
      // What the first task's model says holds for all: they share the run's config and
      // features.
      out.explained = explained_words(*model, "");
      out.baseline = baseline_words(*model);
      spdlog::info("reading the run's log for the new tasks' query rows");
      data = pipeline::prepare_run_data(model->config, &model->features);
      const std::string before = recorded_source(*model, out.before_note);
      if (!before.empty()) source = inference::load_scoring_model(before, device, "explain");
    }
    TaskImportance task;
    task.task = t.task;
    task.support_size = t.support_size;
    task.query_size = t.query_size;
    task.adapt_steps = t.steps;
    task.inner_lr = t.inner_lr;
    task.metric = inference::headline_metric(adapted.label_kind);
    task.metric_before = inference::headline(t.before, adapted.label_kind);
    task.metric_after = inference::headline(t.after, adapted.label_kind);
    const EncodedRows rows = own_query_rows(*model, data.get());
    task.after = explain_model(*model, rows, o, "adapted");
    task.after.checkpoint.clear();  // the temporary file is gone with the folder
    if (source) {
      task.before = explain_model(*source, rows, o, "before");
      task.changes = changes_between(*task.before, task.after);
    }
    for (const ModelExplanation* m : {&task.after, task.before ? &*task.before : nullptr}) {
      if (!m) continue;
      out.max_gap = std::max(out.max_gap, m->max_gap);
      out.rows += static_cast<std::int64_t>(m->rows.size());
      out.rows_over_tolerance += m->rows_over_tolerance;
    }
    out.tasks.push_back(std::move(task));
  }
  out.across_tasks = mean_over_tasks(out.tasks);
  spdlog::info(
      "{} new task(s) explained on their query rows with {} Gauss-Legendre step(s): largest "
      "completeness gap {:.3g}, {} of {} row explanation(s) over the tolerance",
      out.tasks.size(), steps, out.max_gap, out.rows_over_tolerance, out.rows);
  if (out.rows_over_tolerance > 0)
    spdlog::warn(
        "{} of {} row explanation(s) have a completeness gap over the tolerance: explain the "
        "tasks' adapted models with more --steps for finer attributions",
        out.rows_over_tolerance, out.rows);
  return out;
}

nlohmann::json to_json(const NewTaskImportance& n) {
  auto changes_json = [](const std::vector<FeatureChange>& changes, bool before) {
    nlohmann::json out = nlohmann::json::array();
    for (const FeatureChange& c : changes) {
      nlohmann::json j = {{"feature", c.feature}, {"after", c.after}, {"constant", c.constant}};
      if (before) {
        j["before"] = c.before;
        j["change"] = c.change();
      }
      out.push_back(std::move(j));
    }
    return out;
  };
  nlohmann::json tasks = nlohmann::json::array();
  for (const TaskImportance& t : n.tasks) {
    const std::vector<FeatureChange> features = task_features(t);
    nlohmann::json j = {{"task", t.task},
                        {"support", t.support_size},
                        {"query", t.query_size},
                        {"adapt_steps", t.adapt_steps},
                        {"inner_lr", t.inner_lr},
                        {"metric", t.metric},
                        {"metric_before", finite_or_null(t.metric_before)},
                        {"metric_after", finite_or_null(t.metric_after)},
                        {"max_completeness_gap", t.after.max_gap},
                        {"rows_over_tolerance", t.after.rows_over_tolerance},
                        {"features", changes_json(features, t.before.has_value())}};
    if (t.before) {
      j["before_max_completeness_gap"] = t.before->max_gap;
      j["before_rows_over_tolerance"] = t.before->rows_over_tolerance;
    }
    tasks.push_back(std::move(j));
  }
  const bool before = n.before_note.empty();
  nlohmann::json j = {
      {"method", "integrated_gradients"},
      {"reference",
       "Sundararajan, Taly & Yan 2017, Axiomatic Attribution for Deep Networks, arXiv:1703.01365"},
      {"quadrature", "gauss_legendre"},
      {"steps", n.steps},
      {"checkpoint", n.checkpoint},
      {"adaptation", n.settings_source},
      {"explained", n.explained},
      {"baseline", n.baseline},
      {"importance", "mean |attribution| over the task's query rows"},
      {"tolerance", {{"relative", kRelativeTolerance}, {"floor", kGapFloor}}},
      {"max_completeness_gap", n.max_gap},
      {"rows_over_tolerance", n.rows_over_tolerance},
      {"across_tasks", changes_json(n.across_tasks, before)},
      {"tasks", tasks}};
  if (!before) j["before_note"] = n.before_note;
  return j;
}

namespace {

std::string cell_number(double v) {
  return std::isfinite(v) ? inference::csv_number(v) : std::string();
}

void write_model_rows(const Explanation& e, const ModelExplanation& m, const std::string& model,
                      int top, std::ostream& out) {
  const bool classes = e.label_kind == "multiclass";
  for (std::size_t r = 0; r < m.rows.size(); ++r) {
    const RowExplanation& row = m.rows[r];
    const std::size_t k = std::min(row.attributions.size(), static_cast<std::size_t>(top));
    for (std::size_t i = 0; i < k; ++i) {
      const FeatureAttribution& a = row.attributions[i];
      out << (r + 1);
      for (const auto& cell : row.key) out << "," << inference::csv_cell(cell);
      out << "," << model;
      if (classes) out << "," << inference::csv_cell(row.class_name);
      out << "," << cell_number(row.score) << "," << cell_number(row.probability) << ","
          << cell_number(row.baseline_score) << "," << cell_number(row.gap) << "," << (i + 1) << ","
          << inference::csv_cell(a.feature) << "," << inference::csv_cell(a.value) << ","
          << cell_number(a.attribution) << "\n";
    }
  }
}

nlohmann::json model_json(const Explanation& e, const ModelExplanation& m, int top) {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t r = 0; r < m.rows.size(); ++r) {
    const RowExplanation& row = m.rows[r];
    nlohmann::json key = nlohmann::json::object();
    for (std::size_t c = 0; c < e.key_columns.size() && c < row.key.size(); ++c)
      key[e.key_columns[c]] = row.key[c];
    nlohmann::json attributions = nlohmann::json::array();
    const std::size_t k = std::min(row.attributions.size(), static_cast<std::size_t>(top));
    for (std::size_t i = 0; i < k; ++i)
      attributions.push_back({{"feature", row.attributions[i].feature},
                              {"value", row.attributions[i].value},
                              {"attribution", row.attributions[i].attribution}});
    nlohmann::json j = {{"row", r + 1},
                        {"key", key},
                        {"score", row.score},
                        {"probability", finite_or_null(row.probability)},
                        {"baseline_score", row.baseline_score},
                        {"completeness_gap", row.gap},
                        {"tolerance", row.tolerance},
                        {"within_tolerance", row.gap <= row.tolerance},
                        {"attributions", attributions}};
    if (!row.class_name.empty()) j["class"] = row.class_name;
    rows.push_back(std::move(j));
  }
  nlohmann::json importance = nlohmann::json::array();
  for (const auto& f : m.importance)
    importance.push_back({{"feature", f.feature},
                          {"mean_abs_attribution", f.mean_abs},
                          {"rows", f.rows},
                          {"constant", f.constant}});
  return {{"checkpoint", m.checkpoint},        {"kind", m.kind},
          {"max_completeness_gap", m.max_gap}, {"rows_over_tolerance", m.rows_over_tolerance},
          {"importance", importance},          {"rows", rows}};
}

}  // namespace

void write_explanation_csv(const Explanation& e, int top, std::ostream& out) {
  std::vector<std::string> header = {"row"};
  header.insert(header.end(), e.key_columns.begin(), e.key_columns.end());
  header.push_back("model");
  if (e.label_kind == "multiclass") header.push_back("class");
  for (const char* c : {"score", "probability", "baseline_score", "completeness_gap", "rank",
                        "feature", "value", "attribution"})
    header.push_back(c);
  for (std::size_t c = 0; c < header.size(); ++c)
    out << (c ? "," : "") << inference::csv_cell(header[c]);
  out << "\n";
  write_model_rows(e, e.model, e.model.kind, top, out);
  if (e.before) write_model_rows(e, *e.before, "before", top, out);
}

nlohmann::json to_json(const Explanation& e, int top) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : e.changes)
    changes.push_back(
        {{"feature", c.feature}, {"before", c.before}, {"after", c.after}, {"change", c.change()}});
  nlohmann::json j = {{"method", "integrated_gradients"},
                      {"reference",
                       "Sundararajan, Taly & Yan 2017, Axiomatic Attribution for Deep Networks, "
                       "arXiv:1703.01365"},
                      {"quadrature", "gauss_legendre"},
                      {"steps", e.steps},
                      {"label_kind", e.label_kind},
                      {"explained", e.explained},
                      {"baseline", e.baseline},
                      {"tolerance", {{"relative", kRelativeTolerance}, {"floor", kGapFloor}}},
                      {"key_columns", e.key_columns},
                      {"rows_read", e.rows_read},
                      {"rows_skipped", e.rows_skipped},
                      {"rows_of_other_tasks", e.rows_of_other_tasks},
                      {"model", model_json(e, e.model, top)},
                      {"before", e.before ? model_json(e, *e.before, top) : nlohmann::json()},
                      {"changes", changes}};
  if (!e.task.empty()) j["task"] = e.task;
  if (!e.before_note.empty()) j["before_note"] = e.before_note;
  return j;
}

}  // namespace ml::explain
