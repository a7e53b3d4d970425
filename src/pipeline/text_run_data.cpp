// Data preparation of text runs: see text_run_data.hpp.
#include "pipeline/text_run_data.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "models/transformer.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/strings.hpp"

namespace ml::pipeline {

data::TextDatasetSpec text_dataset_spec(const config::Config& config) {
  const auto& text = config.data.text;
  data::TextDatasetSpec spec;
  spec.files = config.data.files;
  spec.format.delimiter = config.data.format.delimiter_char();
  spec.format.header = config.data.format.header;
  spec.text_column = text.column;
  spec.class_column = text.class_column;
  spec.path_column = text.path_column;
  spec.path.separator = text.path_separator;
  spec.path.level = text.path_level;
  spec.path.mode = text.path_mode;
  spec.group_column = text.group_column;
  spec.bad_rows = config.data.bad_rows;
  spec.show_bad_rows = config.data.show_bad_rows;
  return spec;
}

tasks::ClassSplitSpec class_split_spec(const config::Config& config) {
  tasks::ClassSplitSpec spec;
  spec.validation_fraction = config.split.validation_fraction;
  spec.new_fraction = config.split.new_fraction;
  spec.seed = config.seed;
  spec.train = config.split.train_classes;
  spec.validation = config.split.validation_classes;
  spec.new_classes = config.split.new_classes;
  return spec;
}

features::TokenizerOptions tokenizer_options(const config::Config& config) {
  return features::tokenizer_options(config.features.tokenizer, config.seed);
}

tasks::ClassEpisodeShape class_episode_shape(const config::Config& config) {
  tasks::ClassEpisodeShape shape;
  shape.ways = config.task.label.ways;
  shape.shots = config.task.support;
  shape.queries = config.task.query;
  return shape;
}

void warn_about_text_load(const data::TextLoadReport& report) {
  if (report.rows_rejected > 0) {
    std::vector<std::string> reasons, first;
    for (const auto& [reason, count] : report.rejected_by_reason)
      reasons.push_back(std::to_string(count) + " " + reason);
    for (const auto& bad : report.bad_rows)
      first.push_back(bad.file + ":" + std::to_string(bad.line) + " " + bad.reason);
    spdlog::warn("skipped {} of {} rows of the text dataset ({}); first: {}", report.rows_rejected,
                 report.rows_read, join(reasons, ", "), join(first, "; "));
  }
  if (report.non_utf8_cells > 0)
    spdlog::warn("{} cells of the text dataset are not UTF-8; their bytes are kept as \\xHH",
                 report.non_utf8_cells);
}

features::Tokenizer train_tokenizer(const config::Config& config, const data::TextDataset& dataset,
                                    const tasks::ClassSplit& split) {
  // The training classes' texts only: held-out classes must not shape the vocabulary.
  std::vector<bool> trains(dataset.class_names.size(), false);
  for (std::int32_t c : split.train) trains[static_cast<std::size_t>(c)] = true;
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < dataset.size(); ++i)
    if (trains[static_cast<std::size_t>(dataset.label[i])]) texts.push_back(dataset.texts[i]);
  return features::Tokenizer::train(texts, tokenizer_options(config));
}

std::unique_ptr<TextRunData> prepare_text_run_data(const config::Config& config,
                                                   const std::string* saved_tokenizer) {
  auto data = std::make_unique<TextRunData>();
  data->dataset = data::load_text_dataset(text_dataset_spec(config), data->report);
  warn_about_text_load(data->report);
  throw_if_interrupted("preparing the data");
  data->split = tasks::split_classes(data->dataset.class_names, class_split_spec(config));
  data->tokenizer = saved_tokenizer ? features::Tokenizer::from_bytes(*saved_tokenizer)
                                    : train_tokenizer(config, data->dataset, data->split);
  throw_if_interrupted("preparing the data");
  const models::TokenBatch encoded = models::token_batch(
      data->tokenizer->encode_batch(data->dataset.texts, config.model.transformer.max_len));
  data->tokens = encoded.ids;
  data->mask = encoded.mask;
  const tasks::ClassEpisodeShape shape = class_episode_shape(config);
  for (auto part : {tasks::ClassSplitPart::kTrain, tasks::ClassSplitPart::kValidation,
                    tasks::ClassSplitPart::kNew})
    data->samplers[static_cast<std::size_t>(part)] = std::make_unique<tasks::ClassEpisodeSampler>(
        data->dataset, data->split.classes(part), tasks::split_part_name(part), shape, config.seed);
  if (std::string why = data->sampler(tasks::ClassSplitPart::kTrain).check(); !why.empty())
    throw DataError(why + " (task.label.ways, task.support, task.query; the split's classes)");
  spdlog::debug("prepared {} texts of {} classes ({} train, {} validation, {} new); {} token ids",
                data->dataset.size(), data->dataset.class_names.size(), data->split.train.size(),
                data->split.validation.size(), data->split.new_classes.size(),
                data->tokenizer->vocab_size());
  return data;
}

std::int64_t text_head_outputs(const config::Config& config, const tasks::ClassSplit& split) {
  if (config.meta.algorithm == config::Algorithm::kPretrain)
    return static_cast<std::int64_t>(split.train.size());
  return config.task.label.ways;
}

meta::TaskBatch make_text_task_batch(const TextRunData& data, const tasks::ClassEpisode& episode,
                                     const torch::Device& device) {
  meta::TaskBatch b{
      models::make_token_batch(data.tokens, data.mask, episode.support, episode.support_labels),
      models::make_token_batch(data.tokens, data.mask, episode.query, episode.query_labels)};
  std::vector<std::int64_t> rows;
  for (std::int32_t c : episode.classes) {
    const auto& train = data.split.train;
    const auto at = std::find(train.begin(), train.end(), c);
    rows.push_back(at == train.end() ? -1 : static_cast<std::int64_t>(at - train.begin()));
  }
  b.classes = torch::tensor(rows, torch::kInt64).to(device);
  if (device.is_cuda()) {
    b.support = b.support.to(device);
    b.query = b.query.to(device);
  }
  return b;
}

}  // namespace ml::pipeline
