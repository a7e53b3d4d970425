// Everything a text run (data.text: few-shot classification over held-out classes) derives
// from its config before any model is involved: the labelled text dataset, its classes split
// into train / validation / new, the tokenizer (trained on the training classes' texts only, or
// the one a checkpoint saved), every text encoded once to token ids, and an N-way K-shot episode
// sampler per split. The counterpart of pipeline/run_data.hpp for purchase logs: one function
// builds it, so train, eval and inspect see the same classes and episodes.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "config/config.hpp"
#include "data/text_dataset.hpp"
#include "features/tokenizer.hpp"
#include "meta/meta_learner.hpp"
#include "models/torchscript_backbone.hpp"
#include "tasks/class_episode_sampler.hpp"
#include "tasks/class_split.hpp"

namespace ml::pipeline {

// The config's pieces as the library's text types take them.
data::TextDatasetSpec text_dataset_spec(const config::Config& config);
tasks::ClassSplitSpec class_split_spec(const config::Config& config);
features::TokenizerOptions tokenizer_options(const config::Config& config);
// N = task.label.ways, K = task.support, Q = task.query.
tasks::ClassEpisodeShape class_episode_shape(const config::Config& config);

// Tokens per text: model.backbone.max_len for a backbone, else model.transformer.max_len.
std::int64_t token_length(const config::Config& config);

// data.text.min_class_groups, or task.support + task.query when it is 0.
int min_class_groups(const config::Config& config);

// The dataset's classes split as the config says (tasks::split_classes over the classes kept),
// after leaving out those with fewer than min_class_groups(config) usable duplicate groups
// (ClassSplit::dropped, logged with their count). Throws ConfigError when a split.*_classes
// list names a class left out, and the errors of split_classes.
tasks::ClassSplit split_text_classes(const config::Config& config,
                                     const data::TextDataset& dataset);

// Why `part` of the split cannot give one N-way episode for lack of classes ("" when it can,
// or when the config asks for no such split: a validation or new fraction of 0, or no list):
// fewer than task.label.ways classes, with the counts and the keys that change them. For the
// train split prepare_text_run_data throws it; for validation and new train warns (a run can
// still be adapted to classes given by hand) and eval refuses N-way episodes.
std::string split_problem(const config::Config& config, const tasks::ClassSplit& split,
                          tasks::ClassSplitPart part);

// Logs how many rows of a text file were skipped and why (the first few, with file:line).
void warn_about_text_load(const data::TextLoadReport& report);

struct TextRunData {
  data::TextLoadReport report;
  data::TextDataset dataset;
  tasks::ClassSplit split;
  std::optional<features::Tokenizer> tokenizer;
  // Every row's token ids [N, max_len] int64 and mask [N, max_len] bool, on the CPU.
  torch::Tensor tokens, mask;
  // model.type = "backbone": the TorchScript encoder (on the CPU), and for a frozen one every
  // row's vector [N, dim], computed once (undefined for a trainable backbone or a transformer).
  std::shared_ptr<const models::TorchScriptBackbone> backbone;
  torch::Tensor vectors;
  // One sampler per tasks::ClassSplitPart (train, validation, new), over `dataset`: TextRunData
  // does not move.
  std::array<std::unique_ptr<tasks::ClassEpisodeSampler>, 3> samplers;

  const tasks::ClassEpisodeSampler& sampler(tasks::ClassSplitPart part) const {
    return *samplers[static_cast<std::size_t>(part)];
  }
  // The dataset's class names in id order (an episode's label i is class episode.classes[i]),
  // for checkpoints and predictions.
  const std::vector<std::string>& class_names() const { return dataset.class_names; }
  // Rows `rows` as a batch with episode labels `labels` (models::make_token_batch), carrying a
  // frozen backbone's vectors of them.
  models::Batch batch(const std::vector<std::size_t>& rows,
                      const std::vector<std::int32_t>& labels) const;
};

// The tokenizer a backbone's ids come from (model.backbone.tokenizer): a metalearn tokenizer
// file or a SentencePiece model. DataError naming the key and file when it cannot be read or
// is neither.
features::Tokenizer backbone_tokenizer(const config::Config& config);

// New texts as a batch for `backbone` (may be null: a transformer's): their tokens, and a frozen
// backbone's vectors computed once; targets `labels` (empty: zeros).
models::Batch encode_text_batch(const config::Config& config, const features::Tokenizer& tokenizer,
                                const models::TorchScriptBackbone* backbone,
                                const std::vector<std::string>& texts,
                                const std::vector<std::int32_t>& labels = {});

// The tokenizer a run trains (features.tokenizer) on the texts of `split`'s training classes:
// the errors of Tokenizer::train.
features::Tokenizer train_tokenizer(const config::Config& config, const data::TextDataset& dataset,
                                    const tasks::ClassSplit& split);

// Outputs of a text run's head: the number of training classes for pretrain (one joint head
// row per training class, Chen et al. 2019), else task.label.ways (the N-way episode head).
std::int64_t text_head_outputs(const config::Config& config, const tasks::ClassSplit& split);

// Loads config.data.files as a text dataset, splits its classes, trains the tokenizer on the
// training classes' rows (a backbone's: reads model.backbone.tokenizer; or reads
// `saved_tokenizer`, the bytes a checkpoint holds) and encodes every text to token_length()
// tokens. A backbone is loaded (TorchScriptBackbone::load, checked against
// `backbone_checksum` when not 0: the checkpoint's record) and, frozen, run once over every text.
// Warns about skipped rows. Throws DataError
// for the train split's split_problem and when the training classes cannot give one N-way episode
// (naming the short classes), and the errors of load_text_dataset, split_text_classes and
// Tokenizer::train.
std::unique_ptr<TextRunData> prepare_text_run_data(const config::Config& config,
                                                   const std::string* saved_tokenizer = nullptr,
                                                   std::uint64_t backbone_checksum = 0);

// An episode's support and query as token batches (targets are episode labels 0..N-1) on
// `device`, with TaskBatch::classes: each episode class's index among split.train (the row of
// a pretrain run's joint head), -1 for a validation or new class.
meta::TaskBatch make_text_task_batch(const TextRunData& data, const tasks::ClassEpisode& episode,
                                     const torch::Device& device);

}  // namespace ml::pipeline
