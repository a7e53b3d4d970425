// Data preparation of text runs: see text_run_data.hpp.
#include "pipeline/text_run_data.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

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

int min_class_groups(const config::Config& config) {
  const int set = config.data.text.min_class_groups;
  return set > 0 ? set : config::min_episode_examples(config.task.support, config.task.query);
}

tasks::ClassSplit split_text_classes(const config::Config& config,
                                     const data::TextDataset& dataset) {
  const int min_groups = min_class_groups(config);
  const std::vector<std::int64_t> groups = data::usable_groups_per_class(dataset);
  const tasks::ClassSplitSpec spec = class_split_spec(config);
  const std::string key =
      "data.text.min_class_groups = " + std::to_string(min_groups) +
      (config.data.text.min_class_groups > 0 ? "" : ", task.support + task.query");
  for (const auto& [list, name] : {std::pair{&spec.train, "split.train_classes"},
                                   std::pair{&spec.validation, "split.validation_classes"},
                                   std::pair{&spec.new_classes, "split.new_classes"}})
    for (const std::string& listed : *list) {
      const std::int32_t id = dataset.class_id(listed);
      if (id >= 0 && groups[static_cast<std::size_t>(id)] < min_groups)
        throw ConfigError(std::string(name) + " names " + quoted_value(listed) + ", which has " +
                          count_of(groups[static_cast<std::size_t>(id)], "distinct text") +
                          ", fewer than " + key +
                          ": lower data.text.min_class_groups or leave the class out");
    }
  // Only the kept classes are split, so a seeded split ranks among them alone.
  std::vector<std::int32_t> kept, dropped;
  std::vector<std::string> kept_names;
  std::int64_t dropped_rows = 0;
  for (std::size_t c = 0; c < dataset.class_names.size(); ++c) {
    if (groups[c] >= min_groups) {
      kept.push_back(static_cast<std::int32_t>(c));
      kept_names.push_back(dataset.class_names[c]);
    } else {
      dropped.push_back(static_cast<std::int32_t>(c));
    }
  }
  if (kept.empty())
    throw DataError("none of the " +
                    count_of(static_cast<long long>(dataset.class_names.size()), "class") +
                    " has " + std::to_string(min_groups) + " distinct texts (" + key +
                    "): lower it, or task.support / task.query");
  tasks::ClassSplit split = tasks::split_classes(kept_names, spec);
  for (auto* list : {&split.train, &split.validation, &split.new_classes, &split.unassigned})
    for (std::int32_t& c : *list) c = kept[static_cast<std::size_t>(c)];
  std::sort(dropped.begin(), dropped.end(), [&](std::int32_t a, std::int32_t b) {
    return dataset.class_names[static_cast<std::size_t>(a)] <
           dataset.class_names[static_cast<std::size_t>(b)];
  });
  split.dropped = std::move(dropped);
  std::string left_out;
  if (!split.dropped.empty()) {
    for (std::int32_t label : dataset.label)
      if (groups[static_cast<std::size_t>(label)] < min_groups) ++dropped_rows;
    left_out = fmt::format("; {} more ({} texts) left out with fewer than {} distinct texts ({})",
                           split.dropped.size(), with_thousands(dropped_rows), min_groups, key);
  }
  spdlog::info("classes: {} train, {} validation, {} new{}{}", split.train.size(),
               split.validation.size(), split.new_classes.size(),
               split.unassigned.empty()
                   ? std::string()
                   : fmt::format(", {} in no split list", split.unassigned.size()),
               left_out);
  return split;
}

std::string split_problem(const config::Config& config, const tasks::ClassSplit& split,
                          tasks::ClassSplitPart part) {
  const int ways = config.task.label.ways;
  const auto& s = config.split;
  const bool lists =
      !s.train_classes.empty() || !s.validation_classes.empty() || !s.new_classes.empty();
  const std::size_t n = split.classes(part).size();
  std::string keys;
  switch (part) {
    case tasks::ClassSplitPart::kTrain:
      keys = !lists                    ? "split.new_fraction / split.validation_fraction"
             : s.train_classes.empty() ? "split.new_classes / split.validation_classes (the "
                                         "classes in neither train)"
                                       : "split.train_classes";
      break;
    case tasks::ClassSplitPart::kValidation:
      if (lists ? s.validation_classes.empty() : s.validation_fraction == 0) return "";
      keys = lists ? "split.validation_classes" : "split.validation_fraction";
      break;
    case tasks::ClassSplitPart::kNew:
      if (lists ? s.new_classes.empty() : s.new_fraction == 0) return "";
      keys = lists ? "split.new_classes" : "split.new_fraction";
      break;
  }
  if (n >= static_cast<std::size_t>(ways)) return "";
  const std::size_t total = split.train.size() + split.validation.size() +
                            split.new_classes.size() + split.unassigned.size();
  std::string message = "the " + std::string(tasks::split_part_name(part)) + " split has " +
                        std::to_string(n) + " of the " + std::to_string(total) + " classes";
  if (!split.dropped.empty())
    message += " (" + std::to_string(split.dropped.size()) +
               " more were left out with fewer than " + std::to_string(min_class_groups(config)) +
               " distinct texts: data.text.min_class_groups)";
  return message + ", fewer than task.label.ways = " + std::to_string(ways) +
         " for one episode: change " + keys +
         ", lower task.label.ways, or keep more classes with a lower task.support + task.query "
         "or data.text.min_class_groups";
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

std::int64_t token_length(const config::Config& config) {
  return config.model.type == config::ModelType::kBackbone ? config.model.backbone.max_len
                                                           : config.model.transformer.max_len;
}

features::Tokenizer backbone_tokenizer(const config::Config& config) {
  const std::string& path = config.model.backbone.tokenizer;
  const config::LowerCase lowercase = config.model.backbone.lowercase;
  std::optional<features::Tokenizer> tokenizer;
  try {
    tokenizer = features::Tokenizer::from_file(path, lowercase);
  } catch (const Error& e) {
    throw DataError("model.backbone.tokenizer '" + path + "': " + e.what());
  }
  const std::string kind = tokenizer->kind();
  const bool wordpiece = kind != "sentencepiece";
  if (lowercase != config::LowerCase::kAuto && !wordpiece)
    throw ConfigError("model.backbone.lowercase = \"" + enum_name(lowercase) + "\"" +
                      ": applies to a WordPiece vocabulary, and model.backbone.tokenizer '" + path +
                      "' is SentencePiece's, which normalises text itself; leave it \"auto\"");
  // A tokenizer file that `metalearn export` or a checkpoint wrote carries its own case.
  const bool lowers = kind == "wordpiece, lower-cased";
  if (lowercase != config::LowerCase::kAuto && (lowercase == config::LowerCase::kYes) != lowers)
    throw ConfigError(
        "model.backbone.lowercase = \"" + enum_name(lowercase) + "\": model.backbone.tokenizer '" +
        path + "' is a metalearn tokenizer file " + "whose WordPiece vocabulary is fixed as " +
        (lowers ? "lower-cased" : "cased") + "; leave it \"auto\" or give the vocab.txt itself");
  if (wordpiece && config.model.backbone.max_len < 3)
    throw ConfigError("model.backbone.max_len = " + std::to_string(config.model.backbone.max_len) +
                      ": a WordPiece text takes [CLS] and [SEP] besides its words, so every text "
                      "would reach the backbone alike; must be at least 3");
  spdlog::info("backbone tokenizer: {} ({} ids)", kind, tokenizer->vocab_size());
  return std::move(*tokenizer);
}

models::Batch TextRunData::batch(const std::vector<std::size_t>& rows,
                                 const std::vector<std::int32_t>& labels) const {
  models::Batch b = models::make_token_batch(tokens, mask, rows, labels);
  if (vectors.defined()) {
    std::vector<std::int64_t> index(rows.begin(), rows.end());
    b.dense = vectors.index_select(0, torch::tensor(index, torch::kInt64));
  }
  return b;
}

models::Batch encode_text_batch(const config::Config& config, const features::Tokenizer& tokenizer,
                                const models::TorchScriptBackbone* backbone,
                                const std::vector<std::string>& texts,
                                const std::vector<std::int32_t>& labels) {
  const models::TokenBatch encoded =
      models::token_batch(tokenizer.encode_batch(texts, token_length(config)));
  std::vector<std::size_t> all(texts.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  std::vector<std::int32_t> targets = labels;
  if (targets.empty()) targets.assign(texts.size(), 0);
  models::Batch b = models::make_token_batch(encoded.ids, encoded.mask, all, targets);
  if (backbone && !backbone->trainable() && !texts.empty())
    b.dense = backbone->encode_all(encoded.ids, encoded.mask);
  return b;
}

std::unique_ptr<TextRunData> prepare_text_run_data(const config::Config& config,
                                                   const std::string* saved_tokenizer,
                                                   std::uint64_t backbone_checksum) {
  auto data = std::make_unique<TextRunData>();
  data->dataset = data::load_text_dataset(text_dataset_spec(config), data->report);
  warn_about_text_load(data->report);
  throw_if_interrupted("preparing the data");
  data->split = split_text_classes(config, data->dataset);
  if (std::string why = split_problem(config, data->split, tasks::ClassSplitPart::kTrain);
      !why.empty())
    throw DataError(why);
  const bool backbone = config.model.type == config::ModelType::kBackbone;
  data->tokenizer = saved_tokenizer ? features::Tokenizer::from_bytes(*saved_tokenizer)
                    : backbone      ? backbone_tokenizer(config)
                                    : train_tokenizer(config, data->dataset, data->split);
  throw_if_interrupted("preparing the data");
  const models::TokenBatch encoded =
      models::token_batch(data->tokenizer->encode_batch(data->dataset.texts, token_length(config)));
  data->tokens = encoded.ids;
  data->mask = encoded.mask;
  if (backbone) {
    data->backbone = models::TorchScriptBackbone::load(config, torch::kCPU, backbone_checksum,
                                                       data->tokenizer->vocab_size());
    if (!data->backbone->trainable()) {
      const auto start = std::chrono::steady_clock::now();
      data->vectors = data->backbone->encode_all(data->tokens, data->mask);
      spdlog::info("the frozen backbone encoded {} texts once ({:.1f} s)", data->dataset.size(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    throw_if_interrupted("preparing the data");
  }
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
  meta::TaskBatch b{data.batch(episode.support, episode.support_labels),
                    data.batch(episode.query, episode.query_labels)};
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
