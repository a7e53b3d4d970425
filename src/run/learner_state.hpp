// Building a meta-learner for a config and moving its state in and out of checkpoints, shared
// by train (save, resume) and adapt/eval/predict (load).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "config/config.hpp"
#include "features/feature_space.hpp"
#include "features/tokenizer.hpp"
#include "meta/meta_learner.hpp"
#include "pipeline/run_data.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/training_progress.hpp"

namespace ml::run {

// A trained run loaded back: its resolved config, the data prepared with the statistics the
// checkpoint carries (never refitted), and the learner with its weights on `device`.
struct LoadedRun {
  std::string checkpoint_path;
  config::Config config;
  nlohmann::json progress;    // as stored: a TrainingProgress, or an adapted model's record
  TrainingProgress training;  // the meta-training behind it (an adapted model's source run)
  std::string kind;           // "meta" | "adapted"
  std::unique_ptr<pipeline::RunData> data;
  std::unique_ptr<meta::MetaLearner> learner;
};

// `path` is a checkpoint file or a run directory (best checkpoint first). `overrides` are
// --set assignments applied to the stored config (e.g. data.files for a newer log); only
// data.*, run.* and meta.adapt_steps/inner_lr may change what the weights mean, so others are
// refused. `device` and `threads` (0: see runtime::resolve_threads) are the command's own and
// replace run.device and run.threads in the loaded config, so its data is parsed with the
// command's thread count. Throws CheckpointError for an unusable checkpoint.
LoadedRun load_run(const std::string& path, const std::vector<std::string>& overrides,
                   const std::string& device, int threads = 0);

// A checkpoint's resolved config and fitted feature statistics read back, as every command that
// loads a checkpoint reads them: a CheckpointError naming `path` when this build cannot use them
// (a config it rejects; statistics incomplete, corrupt or inconsistent).
config::Config saved_config(const nlohmann::json& config, const std::string& path);
features::FeatureSpace saved_features(const nlohmann::json& features, const std::string& path);
// A maml run that fell back to first order (meta.first_order_fallback: its progress, or an
// adapted model's source_progress, records "fomaml") is a fomaml run to every command that
// loads it: `config`'s meta.algorithm becomes fomaml, so tables, summaries and the learner say
// what the weights were meta-trained with. Anything else is left as it is.
void apply_recorded_algorithm(config::Config& config, const CheckpointMeta& meta);

// A freshly initialised learner (torch's RNG seeded from config.seed first, so the same config
// gives the same initial weights), on `device`.
std::unique_ptr<meta::MetaLearner> build_learner(const config::Config& config,
                                                 const features::FeatureSpace& features,
                                                 const torch::Device& device);

// A text run's learner: the transformer (model.transformer) over `data`'s tokenizer ids with
// pipeline::text_head_outputs outputs (the training classes for pretrain, else
// task.label.ways), seeded as build_learner.
std::unique_ptr<meta::MetaLearner> build_text_learner(const config::Config& config,
                                                      const pipeline::TextRunData& data,
                                                      const torch::Device& device);
// The same over `tokenizer`'s ids with `outputs` outputs given (an adapted text model's: its
// classes); `backbone` is model.type = "backbone"'s encoder (required then).
std::unique_ptr<meta::MetaLearner> build_text_learner(
    const config::Config& config, const features::Tokenizer& tokenizer, const torch::Device& device,
    std::int64_t outputs, std::shared_ptr<const models::TorchScriptBackbone> backbone = nullptr);

// The checksum of the backbone file a text run's checkpoint recorded (meta.features.text.
// backbone.checksum); 0 when it has none (not a backbone run).
std::uint64_t backbone_checksum(const Checkpoint& checkpoint);
// The record train writes of `backbone` into a checkpoint's meta.features.text.
nlohmann::json backbone_record(const models::TorchScriptBackbone& backbone);

// A text run read back for eval and adapt: its checkpoint, config, saved tokenizer bytes, data
// prepared with that tokenizer (pipeline::prepare_text_run_data) and learner with the saved
// weights on `device`.
struct TextRun {
  Checkpoint checkpoint;  // checkpoint.path: the resolved file
  config::Config config;
  std::string tokenizer;  // the bytes the checkpoint holds
  std::unique_ptr<pipeline::TextRunData> data;
  std::unique_ptr<meta::MetaLearner> learner;
};
// `checkpoint`: a run directory or checkpoint file. UsageError for an adapted text model (the
// message is its path followed by `if_adapted`, which says what to give instead) or a
// checkpoint that is not a text run's; the errors of load_checkpoint, saved_config,
// prepare_text_run_data and read_learner.
TextRun load_text_run(const std::string& checkpoint, const torch::Device& device,
                      const std::string& if_adapted);

// A text run's tokenizer (Tokenizer::to_bytes) under "tokenizer", as a byte tensor.
void write_tokenizer(torch::serialize::OutputArchive& archive,
                     const features::Tokenizer& tokenizer);
// A text run's checkpoint's tokenizer bytes. CheckpointError naming the file when it is of a
// format before text runs (kFirstTextCheckpointFormat), or holds no text run's classes or
// tokenizer.
std::string read_tokenizer(const Checkpoint& checkpoint);

// Model parameters by name under "model", Meta-SGD learning rates under "inner_lr".
void write_learner(torch::serialize::OutputArchive& archive, meta::MetaLearner& learner);
// Throws CheckpointError when a tensor is missing or has another shape.
void read_learner(torch::serialize::InputArchive& archive, meta::MetaLearner& learner,
                  const std::string& source);

}  // namespace ml::run
