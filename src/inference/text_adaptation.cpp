// Adapting a text run to a set of classes: see text_adaptation.hpp.
#include "inference/text_adaptation.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <set>

#include "config/input_format.hpp"
#include "data/text_dataset.hpp"
#include "eval/class_adaptation_choice.hpp"
#include "inference/adapted_model.hpp"
#include "meta/class_head.hpp"
#include "models/query_metrics.hpp"
#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "runtime/device.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::inference {

namespace fs = std::filesystem;
using torch::Tensor;

namespace {

// The support (and, for --all-new, the query) of the one M-way task, with its classes.
struct TextSupport {
  std::string name, role, source;
  meta::TaskBatch batch;
  std::vector<std::string> classes;  // label i's class
  std::int64_t training_classes = 0;
  int shots = 0;  // K per class; 0 for a CSV's rows
};

void check_text_options(const AdaptOptions& o) {
  if (!o.tasks.empty())
    throw UsageError(
        "--task names a purchase log's task; a text run adapts to classes: give --all-new (its "
        "new classes) or --support-csv FILE (labelled texts of the classes to adapt to)");
  if (o.all_new && !o.support_csv.empty())
    throw UsageError("give either --all-new or --support-csv FILE, not both");
  if (!o.all_new && o.support_csv.empty())
    throw UsageError(
        "nothing to adapt to: give --all-new (the run's new classes) or --support-csv FILE");
  if (o.shots < 0)
    throw UsageError("--shots " + config::support_name(o.shots) +
                     ": a text run takes K texts per class, a number >= 1");
  if (!o.support_csv.empty() && o.shots != 0 && !o.with_training_classes)
    throw UsageError("--shots " + std::to_string(o.shots) +
                     ": with --support-csv every row is support (--shots sets K for "
                     "--with-training-classes only)");
  check_adaptation_settings(o);
}

// A class sampler's classes that could not give K + 1 texts, for a warning.
std::string short_list(const tasks::ClassEpisodeSampler& sampler) {
  std::vector<std::string> names;
  for (const auto& s : sampler.short_classes())
    names.push_back("'" + s.name + "' (" + count_of(s.groups, "distinct text") + ")");
  if (names.size() > 5) {
    const std::size_t more = names.size() - 5;
    names.resize(5);
    names.push_back("and " + std::to_string(more) + " more");
  }
  return join(names, ", ");
}

// The many-way task over `classes` (every one with K + 1 distinct texts: K support texts each,
// every other text as query; the others left out with a warning), labels in the order of
// `classes`. `split` names them in messages. DataError when fewer than 2 classes qualify.
tasks::ClassEpisode many_way(const pipeline::TextRunData& data,
                             const std::vector<std::int32_t>& classes, const std::string& split,
                             int shots, std::uint64_t seed) {
  const tasks::ClassEpisodeSampler sampler(data.dataset, classes, split,
                                           {2, shots, tasks::kQueryRest}, seed);
  if (!sampler.short_classes().empty())
    spdlog::warn(
        "left out {} of the {} {} class(es) with fewer than {} distinct texts (K = {} "
        "support texts and one more): {}",
        sampler.short_classes().size(), classes.size(), split, shots + 1, shots,
        short_list(sampler));
  if (sampler.eligible().size() < 2)
    throw DataError(std::to_string(sampler.eligible().size()) + " of the " +
                    std::to_string(classes.size()) + " " + split + " classes have " +
                    std::to_string(shots + 1) + " distinct texts (K = " + std::to_string(shots) +
                    " support texts and one more); adapting needs 2: choose fewer --shots");
  return sampler.many_way(kAdaptEpisode);
}

std::vector<std::int32_t> offset_labels(const std::vector<std::int32_t>& labels, std::int32_t by) {
  std::vector<std::int32_t> out(labels);
  for (auto& l : out) l += by;
  return out;
}

// --support-csv with --with-training-classes: K texts of each training class the CSV does not
// already have, appended to its support (labels after the CSV's classes).
void add_training_classes(const pipeline::TextRunData& data, const config::Config& config,
                          int shots, TextSupport& s) {
  std::vector<std::int32_t> train;
  for (std::int32_t c : data.split.train)
    if (std::find(s.classes.begin(), s.classes.end(), data.dataset.class_names[c]) ==
        s.classes.end())
      train.push_back(c);
  if (train.empty()) return;
  const tasks::ClassEpisode episode = many_way(data, train, "train", shots, config.seed);
  const auto first = static_cast<std::int32_t>(s.classes.size());
  const models::Batch known =
      data.batch(episode.support, offset_labels(episode.support_labels, first));
  s.batch.support = models::concat(s.batch.support, known);
  for (std::int32_t c : episode.classes) s.classes.push_back(data.dataset.class_names[c]);
  s.training_classes += static_cast<std::int64_t>(episode.classes.size());
}

// --all-new: the new classes (and with --with-training-classes the training ones) in one
// many-way task; the query is the new classes' other texts.
TextSupport new_classes_support(const AdaptOptions& o, const pipeline::TextRunData& data,
                                const config::Config& config, const std::string& path) {
  if (data.split.new_classes.empty())
    throw DataError("'" + path +
                    "' held out no new classes (split.new_classes / split.new_fraction): give "
                    "the classes' texts with --support-csv FILE");
  TextSupport s;
  s.name = kAllNewClassesTask;
  s.role = "new";
  s.source = "the run's new classes";
  s.shots = o.shots > 0 ? o.shots : config.task.support;
  std::vector<std::int32_t> classes = data.split.new_classes;
  if (o.with_training_classes)
    classes.insert(classes.end(), data.split.train.begin(), data.split.train.end());
  const tasks::ClassEpisode episode = many_way(
      data, classes, o.with_training_classes ? "new and training" : "new", s.shots, config.seed);
  std::int32_t fresh = 0;  // labels 0 .. fresh - 1 are new classes: the order of `classes`
  for (std::int32_t c : episode.classes) {
    s.classes.push_back(data.dataset.class_names[c]);
    if (std::find(data.split.new_classes.begin(), data.split.new_classes.end(), c) !=
        data.split.new_classes.end())
      ++fresh;
    else
      ++s.training_classes;
  }
  if (fresh == 0)
    throw DataError("none of the run's " + std::to_string(data.split.new_classes.size()) +
                    " new classes has " + std::to_string(s.shots + 1) + " distinct texts (K = " +
                    std::to_string(s.shots) + " support texts and one more): choose fewer --shots");
  std::vector<std::size_t> query;
  std::vector<std::int32_t> query_labels;
  for (std::size_t i = 0; i < episode.query.size(); ++i)
    if (episode.query_labels[i] < fresh) {
      query.push_back(episode.query[i]);
      query_labels.push_back(episode.query_labels[i]);
    }
  s.batch = {data.batch(episode.support, episode.support_labels), data.batch(query, query_labels)};
  return s;
}

TextSupport csv_support(const AdaptOptions& o, const pipeline::TextRunData& data,
                        const config::Config& config) {
  const config::Config read_with =
      config::input_config(config, {o.support_csv, "--support-csv", o.support_format});
  data::TextDatasetSpec spec = pipeline::text_dataset_spec(read_with);
  // Duplicates among a handful of chosen examples change nothing here, and a CSV written by
  // hand need not carry the run's grouping column.
  spec.group_column.clear();
  data::TextLoadReport report;
  const data::TextDataset rows = data::load_text_dataset(spec, report);
  pipeline::warn_about_text_load(report);
  TextSupport s;
  s.name = fs::path(o.support_csv).stem().string();
  s.role = "csv";
  s.source = o.support_csv;
  s.classes = rows.class_names;
  // Rows of a class the run trained on are allowed: they are its support like any other
  // class's, which is how a user puts chosen known classes next to the new ones.
  std::vector<std::string> known;
  for (const auto& name : rows.class_names) {
    const std::int32_t id = data.dataset.class_id(name);
    if (id >= 0 &&
        std::find(data.split.train.begin(), data.split.train.end(), id) != data.split.train.end())
      known.push_back(quoted_value(name));
  }
  s.training_classes = static_cast<std::int64_t>(known.size());
  if (!known.empty())
    spdlog::info(
        "{} of the {} classes of '{}' are training classes of the run ({}): their rows "
        "are their support like any other class's",
        known.size(), rows.class_names.size(), o.support_csv, join(known, ", "));
  s.batch.support = pipeline::encode_text_batch(config, *data.tokenizer, data.backbone.get(),
                                                rows.texts, rows.label);
  s.batch.query = s.batch.support.rows(0, 0);
  if (s.classes.size() < 2 && !o.with_training_classes)
    throw DataError("'" + o.support_csv + "' holds texts of " +
                    count_of(static_cast<long long>(s.classes.size()), "class") +
                    ": adapting needs at least 2 (or add --with-training-classes)");
  return s;
}

double accuracy(const Tensor& outputs, const models::Batch& query) {
  return models::query_metrics(outputs, query.target, tasks::LabelKind::kMulticlass).accuracy;
}

void check_finite(const Tensor& t, const std::string& what, int steps, double lr) {
  if (!torch::isfinite(t).all().item<bool>())
    throw NumericError("adapting to the classes diverged: " + what + " hold NaN or Inf after " +
                       count_of(steps, "step") + " at inner lr " + short_number(lr) +
                       "; lower --inner-lr or --steps");
}

// The adaptation setting chosen on the run's validation classes: one task over all of them
// with `shots` support texts each and every other text as query, the candidates those of eval's
// many-way protocol (eval/class_adaptation_choice.hpp) over its default steps and
// meta.adapt_steps. nullopt when fewer than 2 validation classes have shots + 1 distinct texts,
// or every candidate diverged.
struct ChosenSetting {
  eval::ClassAdaptSetting setting;
  double accuracy = 0;
  std::size_t classes = 0, candidates = 0;
};
std::optional<ChosenSetting> choose_on_validation(const meta::MetaLearner& learner,
                                                  const pipeline::TextRunData& data,
                                                  const config::Config& config, int shots,
                                                  const torch::Device& device) {
  const tasks::ClassEpisodeSampler sampler(data.dataset, data.split.validation, "validation",
                                           {2, shots, tasks::kQueryRest}, config.seed);
  if (sampler.eligible().size() < 2) return std::nullopt;
  const tasks::ClassEpisode episode = sampler.many_way(kAdaptEpisode);
  const meta::TaskBatch batch = pipeline::make_text_task_batch(data, episode, device);
  std::vector<int> steps = eval::kClassAdaptSteps;
  steps.push_back(config.meta.adapt_steps);
  const std::vector<eval::ClassAdaptSetting> candidates =
      eval::class_adapt_settings(steps, config.meta.inner_lr, learner.algorithm());
  const std::vector<double> scores = eval::class_adapt_accuracies(
      learner, batch, static_cast<std::int64_t>(episode.classes.size()), candidates);
  const int best = eval::best_setting(scores);
  if (best < 0) return std::nullopt;
  return ChosenSetting{candidates[static_cast<std::size_t>(best)],
                       scores[static_cast<std::size_t>(best)], episode.classes.size(),
                       candidates.size()};
}

}  // namespace

AdaptSummary adapt_text_run(const AdaptOptions& o) {
  check_text_options(o);
  runtime::configure_compute(o.threads);
  const torch::Device device = runtime::torch_device(o.device);
  run::TextRun run = run::load_text_run(
      o.checkpoint, device,
      "is already an adapted text model: adapt from the run it came from (its run directory) "
      "instead");
  const std::string& path = run.checkpoint.path;
  const run::Checkpoint& checkpoint = run.checkpoint;
  config::Config& config = run.config;  // the adapted model records its adaptation setting
  const auto& data = run.data;
  const auto& learner = run.learner;

  const bool protonet = learner->algorithm() == config::Algorithm::kProtonet;
  int steps = protonet ? 0 : (o.steps >= 0 ? o.steps : config.meta.adapt_steps);
  double lr = o.inner_lr > 0 ? o.inner_lr : config.meta.inner_lr;
  AdaptSummary summary;
  summary.source_checkpoint = path;
  summary.settings_source =
      o.steps >= 0 && o.inner_lr > 0
          ? "command line"
          : std::string(o.steps >= 0 || o.inner_lr > 0 ? "command line and " : "") +
                "the config's meta.adapt_steps / meta.inner_lr";
  // Neither given: chosen on the validation classes (train chooses none for a text run).
  if (!protonet && o.steps < 0 && o.inner_lr <= 0) {
    const int shots = o.shots > 0 ? o.shots : config.task.support;
    if (const auto chosen = choose_on_validation(*learner, *data, config, shots, device)) {
      steps = chosen->setting.steps;
      lr = chosen->setting.lr;
      summary.settings_source = fmt::format(
          "chosen on the {} validation classes at K={} (the best of {} settings, accuracy {:.3f})",
          chosen->classes, shots, chosen->candidates, chosen->accuracy);
    } else {
      summary.settings_source +=
          " (nothing chosen on the validation classes: fewer than 2 have K + 1 distinct texts, "
          "or every setting diverged)";
    }
  }
  summary.algorithm = learner->algorithm();
  summary.label_kind = tasks::LabelKind::kMulticlass;
  if (learner->algorithm() == config::Algorithm::kMetaSgd && o.inner_lr > 0)
    spdlog::warn("--inner-lr is ignored: metasgd adapts with its learned per-parameter rates");
  if (protonet && o.steps > 0)
    spdlog::warn("--steps is ignored: protonet adapts by the prototypes of the support set");

  TextSupport s =
      o.all_new ? new_classes_support(o, *data, config, path) : csv_support(o, *data, config);
  if (o.with_training_classes && !o.all_new)
    add_training_classes(*data, config, o.shots > 0 ? o.shots : config.task.support, s);
  const auto classes = static_cast<std::int64_t>(s.classes.size());
  if (classes < 2)
    throw DataError("adapting needs at least 2 classes; the support has " +
                    count_of(static_cast<long long>(classes), "class"));
  if (device.is_cuda()) {
    s.batch.support = s.batch.support.to(device);
    s.batch.query = s.batch.query.to(device);
  }

  TaskAdaptation t;
  t.task = s.name;
  t.role = s.role;
  t.support_source = s.source;
  t.support_size = s.batch.support.size();
  t.query_size = s.batch.query.size();
  t.steps = steps;
  t.inner_lr = lr;
  t.classes = s.classes;
  t.training_classes = s.training_classes;
  // Before: the head the adaptation starts from (for M != N the prototypes, i.e. nearest class
  // mean); protonet has no other, so it has no "before".
  if (t.query_size > 0 && !protonet) {
    const Tensor out = meta::class_outputs(
        *learner, meta::adapt_to_classes(*learner, s.batch.support, classes, 0, lr), s.batch.query);
    check_finite(out, "the outputs", 0, lr);
    t.before.accuracy = accuracy(out, s.batch.query);
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Tensor> adapted =
      meta::adapt_to_classes(*learner, s.batch.support, classes, steps, lr);
  if (device.is_cuda()) torch::cuda::synchronize();
  t.adapt_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const Tensor& w : adapted) check_finite(w, "its weights", steps, lr);
  if (t.query_size > 0) {
    const Tensor out = meta::class_outputs(*learner, adapted, s.batch.query);
    check_finite(out, "the outputs", steps, lr);
    t.after.accuracy = accuracy(out, s.batch.query);
  }

  const fs::path out_dir = o.out_dir.empty()
                               ? run::RunLayout(run::run_dir_of(o.checkpoint)).adapted()
                               : fs::path(o.out_dir);
  summary.out_dir = out_dir.string();
  t.checkpoint = (out_dir / adapted_file_name(s.name)).string();
  run::CheckpointMeta meta;
  meta.tool_version = kToolVersion;
  meta.kind = run::kCheckpointKindAdapted;
  config.meta.adapt_steps = steps;
  config.meta.inner_lr = lr;
  to_json(meta.config, config);
  meta.features = checkpoint.meta.features;  // the run's classes and the tokenizer's record
  const nlohmann::json metrics_before = std::isfinite(t.before.accuracy)
                                            ? nlohmann::json{{"accuracy", t.before.accuracy}}
                                            : nlohmann::json();
  const nlohmann::json metrics_after = std::isfinite(t.after.accuracy)
                                           ? nlohmann::json{{"accuracy", t.after.accuracy}}
                                           : nlohmann::json();
  meta.progress = {{"task", s.name},
                   {"role", s.role},
                   {"algorithm", enum_name(learner->algorithm())},
                   {"shots", s.shots > 0 ? nlohmann::json(s.shots) : nlohmann::json()},
                   {"steps", steps},
                   {"inner_lr", lr},
                   {"source_checkpoint", path},
                   {"source_progress", checkpoint.meta.progress},
                   {"support_source", s.source},
                   {"episode", o.all_new || o.with_training_classes ? nlohmann::json(kAdaptEpisode)
                                                                    : nlohmann::json()},
                   {"support_size", t.support_size},
                   {"query_size", t.query_size},
                   {"adapt_ms", t.adapt_ms},
                   {"before", metrics_before},
                   {"after", metrics_after},
                   {"classes", s.classes},
                   {"training_classes", s.training_classes}};
  run::save_checkpoint(t.checkpoint, meta, [&](torch::serialize::OutputArchive& archive) {
    const std::vector<Tensor> rates = meta::class_head_rates(*learner, classes);
    write_adapted_state(archive, *learner, adapted, s.batch.support, &rates);
    run::write_tokenizer(archive, *data->tokenizer);
  });
  spdlog::info("adapted to {} classes in {:.1f} ms -> {}", classes, t.adapt_ms, t.checkpoint);
  summary.tasks.push_back(std::move(t));
  return summary;
}

}  // namespace ml::inference
