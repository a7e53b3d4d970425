// Learner construction and (de)serialisation: see learner_state.hpp.
#include "run/learner_state.hpp"

#include "models/backbone_model.hpp"
#include "models/context_model.hpp"
#include "models/model.hpp"
#include "models/transformer.hpp"
#include "run/checkpoint.hpp"
#include "run/split_record.hpp"
#include "runtime/device.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::run {

config::Config saved_config(const nlohmann::json& config, const std::string& path) {
  try {
    return config::config_from_saved(config);
  } catch (const ConfigError& e) {
    throw CheckpointError("'" + path + "' carries a config this build rejects: " + e.what());
  }
}

void apply_recorded_algorithm(config::Config& config, const CheckpointMeta& meta) {
  if (config.meta.algorithm != config::Algorithm::kMaml || !meta.progress.is_object()) return;
  const nlohmann::json& progress =
      meta.kind == kCheckpointKindAdapted
          ? meta.progress.value("source_progress", nlohmann::json::object())
          : meta.progress;
  if (progress.is_object() &&
      progress.value("algorithm", "") == enum_name(config::Algorithm::kFomaml))
    config.meta.algorithm = config::Algorithm::kFomaml;
}

features::FeatureSpace saved_features(const nlohmann::json& features, const std::string& path) {
  features::FeatureSpace space;
  try {
    from_json(features, space);
  } catch (const DataError& e) {
    throw CheckpointError("'" + path + "' is corrupt: its " + e.what());
  }
  return space;
}

std::unique_ptr<meta::MetaLearner> build_learner(const config::Config& config,
                                                 const features::FeatureSpace& features,
                                                 const torch::Device& device) {
  torch::manual_seed(config.seed);
  auto shape = models::model_shape(config, static_cast<std::int64_t>(features.dense_dim()),
                                   features.id_field_cardinalities());
  if (config.model.item_text.enabled() || config.model.user_sequence.enabled()) {
    const features::Tokenizer* tokenizer = features.item_tokenizer();
    if (config.model.item_text.enabled() && !tokenizer)
      throw CheckpointError(
          "model.item_text is set but the feature statistics hold no item-text tokenizer");
    auto model = std::make_shared<models::ContextModelImpl>(
        models::context_shape(config, shape, tokenizer ? tokenizer->vocab_size() : 0));
    model->to(device);
    return std::make_unique<meta::MetaLearner>(config.meta, tasks::label_kind(config), model);
  }
  models::FunctionalModel model(shape);
  model->to(device);
  return std::make_unique<meta::MetaLearner>(config.meta, tasks::label_kind(config), model);
}

std::unique_ptr<meta::MetaLearner> build_text_learner(
    const config::Config& config, const features::Tokenizer& tokenizer, const torch::Device& device,
    std::int64_t outputs, std::shared_ptr<const models::TorchScriptBackbone> backbone) {
  torch::manual_seed(config.seed);
  if (config.model.type == config::ModelType::kBackbone) {
    if (!backbone)
      throw std::logic_error("build_text_learner: a backbone run without its backbone");
    auto model = std::make_shared<models::BackboneModelImpl>(
        models::backbone_shape(config, *backbone, outputs), std::move(backbone));
    model->to(device);
    return std::make_unique<meta::MetaLearner>(config.meta, tasks::LabelKind::kMulticlass, model);
  }
  auto model = std::make_shared<models::TransformerImpl>(
      models::transformer_shape(config, tokenizer.vocab_size(), outputs));
  model->to(device);
  return std::make_unique<meta::MetaLearner>(config.meta, tasks::LabelKind::kMulticlass, model);
}

std::unique_ptr<meta::MetaLearner> build_text_learner(const config::Config& config,
                                                      const pipeline::TextRunData& data,
                                                      const torch::Device& device) {
  return build_text_learner(config, *data.tokenizer, device,
                            pipeline::text_head_outputs(config, data.split), data.backbone);
}

TextRun load_text_run(const std::string& checkpoint, const torch::Device& device,
                      const std::string& if_adapted) {
  TextRun run;
  const std::string path = resolve_checkpoint_path(checkpoint);
  run.checkpoint = load_checkpoint(path);
  if (run.checkpoint.meta.kind == kCheckpointKindAdapted)
    throw UsageError("'" + path + "' " + if_adapted);
  run.config = saved_config(run.checkpoint.meta.config, path);
  apply_recorded_algorithm(run.config, run.checkpoint.meta);
  if (!run.config.text_run())
    throw UsageError("'" + path + "' is not a text run's checkpoint (no data.text.column)");
  run.tokenizer = read_tokenizer(run.checkpoint);
  run.data = pipeline::prepare_text_run_data(run.config, &run.tokenizer,
                                             backbone_checksum(run.checkpoint));
  run.learner = build_text_learner(run.config, *run.data, device);
  run.checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) { read_learner(archive, *run.learner, path); },
      device);
  return run;
}

std::uint64_t backbone_checksum(const Checkpoint& checkpoint) {
  const auto& f = checkpoint.meta.features;
  const auto pointer = nlohmann::json::json_pointer("/text/backbone/checksum");
  if (!f.is_object() || !f.contains(pointer)) return 0;
  const auto& c = f.at(pointer);
  if (!c.is_number_unsigned())
    throw CheckpointError("'" + checkpoint.path +
                          "' is corrupt: its backbone checksum is not a number");
  return c.get<std::uint64_t>();
}

nlohmann::json backbone_record(const models::TorchScriptBackbone& backbone) {
  return {{"file", backbone.file()},
          {"checksum", backbone.checksum()},
          {"trainable", backbone.trainable()},
          {"dim", backbone.dim()}};
}

void write_tokenizer(torch::serialize::OutputArchive& archive,
                     const features::Tokenizer& tokenizer) {
  const std::string bytes = tokenizer.to_bytes();
  std::vector<std::uint8_t> values(bytes.begin(), bytes.end());
  archive.write("tokenizer", torch::tensor(values, torch::kUInt8));
}

std::string read_tokenizer(const Checkpoint& checkpoint) {
  const std::string& path = checkpoint.path;
  if (checkpoint.meta.format < kFirstTextCheckpointFormat)
    throw CheckpointError("'" + path + "' is of checkpoint format " +
                          std::to_string(checkpoint.meta.format) +
                          ", from before text runs: it holds no tokenizer; train the text run "
                          "afresh into another run.dir");
  if (!checkpoint.meta.features.is_object() || !checkpoint.meta.features.contains("text"))
    throw CheckpointError("'" + path + "' is not a text run's checkpoint (no data.text classes)");
  torch::Tensor t;
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) {
        if (!archive.try_read("tokenizer", t))
          throw CheckpointError("'" + path +
                                "' is corrupt: a text run's checkpoint without its "
                                "tokenizer");
      },
      torch::kCPU);
  t = t.contiguous();
  const auto* data = t.data_ptr<std::uint8_t>();
  return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(t.numel()));
}

void write_learner(torch::serialize::OutputArchive& archive, meta::MetaLearner& learner) {
  torch::serialize::OutputArchive model;
  const auto params = learner.model()->params();
  const auto& names = learner.model()->names();
  for (std::size_t i = 0; i < params.size(); ++i) model.write(names[i], params[i].detach().cpu());
  archive.write("model", model);
  torch::serialize::OutputArchive lrs;
  auto& inner = learner.inner_learning_rates();
  for (std::size_t i = 0; i < inner.size(); ++i) lrs.write(names[i], inner[i].detach().cpu());
  archive.write("inner_lr", lrs);
}

void read_learner(torch::serialize::InputArchive& archive, meta::MetaLearner& learner,
                  const std::string& source) {
  torch::NoGradGuard no_grad;
  auto load = [&](const char* group, std::vector<torch::Tensor> targets) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(group, sub))
      throw CheckpointError("'" + source + "' has no '" + group + "' state");
    const auto& names = learner.model()->names();
    for (std::size_t i = 0; i < targets.size(); ++i) {
      torch::Tensor value;
      if (!sub.try_read(names[i], value))
        throw CheckpointError("'" + source + "' lacks tensor " + group + "/" + names[i] +
                              ": it was written for another model (check model.* in its config)");
      if (value.sizes() != targets[i].sizes())
        throw CheckpointError("'" + source + "': tensor " + group + "/" + names[i] + " has shape " +
                              c10::str(value.sizes()) + ", the model expects " +
                              c10::str(targets[i].sizes()));
      targets[i].copy_(value);
    }
  };
  load("model", learner.model()->params());
  if (!learner.inner_learning_rates().empty()) load("inner_lr", learner.inner_learning_rates());
}

LoadedRun load_run(const std::string& path, const std::vector<std::string>& overrides,
                   const std::string& device_name, int threads) {
  const torch::Device device = runtime::torch_device(device_name);
  LoadedRun run;
  run.checkpoint_path = resolve_checkpoint_path(path);
  Checkpoint checkpoint = load_checkpoint(run.checkpoint_path);
  config::Json stored = checkpoint.meta.config;
  for (const auto& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    if (!(starts_with(key, "data.") || starts_with(key, "run.") || key == "meta.adapt_steps" ||
          key == "meta.inner_lr"))
      throw UsageError(
          "--set " + key + ": a trained model's " + key +
          " cannot change (only data.*, run.*, meta.adapt_steps and meta.inner_lr can)");
    config::apply_override(stored, o);
  }
  run.config = saved_config(stored, run.checkpoint_path);
  apply_recorded_algorithm(run.config, checkpoint.meta);
  refuse_text_run(run.config.text_run(), run.checkpoint_path);
  run.config.run.device = runtime::parse_device(device_name);
  run.config.run.threads = threads;
  run.progress = checkpoint.meta.progress;
  run.kind = checkpoint.meta.kind;
  run.training =
      run.kind == kCheckpointKindAdapted
          ? run.progress.value("source_progress", nlohmann::json::object()).get<TrainingProgress>()
          : run.progress.get<TrainingProgress>();
  const features::FeatureSpace features =
      saved_features(checkpoint.meta.features, run.checkpoint_path);
  run.data = pipeline::prepare_run_data(run.config, &features);
  // The split the run was trained with (an adapted model carries its run's progress).
  check_split_record(run.kind == kCheckpointKindAdapted
                         ? run.progress.value("source_progress", nlohmann::json::object())
                         : run.progress,
                     run.data->tasks, run.checkpoint_path);
  run.learner = build_learner(run.config, run.data->features, device);
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) {
        read_learner(archive, *run.learner, run.checkpoint_path);
      },
      device);
  return run;
}

}  // namespace ml::run
