// What a text run (data.text) will see before any training, for `metalearn inspect`: rows read
// and rejected, its classes per split (train / validation / new: counts, names, which cannot
// give an N-way K-shot episode), texts per class, duplicate groups, token lengths against
// model.transformer.max_len, and the out-of-vocabulary rate per split: the share of
// SentencePiece pieces that fell to the hashed fallback (features/tokenizer.hpp; with a
// backbone's own tokenizer, its unknown id or WordPiece's [UNK]). The tokenizer is trained on
// the training classes' texts, as train trains it, so the validation and new classes' rate is
// what a held-out class meets. The text counterpart of log_profile.hpp.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/text_dataset.hpp"
#include "inspect/log_profile.hpp"
#include "tasks/class_episode_sampler.hpp"

namespace ml::inspect {

// Nearest-rank percentiles of a count (index floor(q * (n - 1)) of the sorted values).

struct TextSplitProfile {
  std::string part;  // "train", "validation", "new"
  tasks::SplitSummary summary;
  std::vector<std::string> class_names;  // sorted by name
  Distribution tokens;                   // token ids per text, before truncation
  std::int64_t truncated = 0;            // texts longer than max_len
  std::int64_t pieces = 0, unknown_pieces = 0;
  double oov_rate = 0;  // unknown_pieces / pieces
};

struct TextProfile {
  std::string config_path;
  bool backbone_tokenizer = false;  // model.backbone.tokenizer's, not one trained on the texts
  data::TextLoadReport load;
  data::TextDatasetSummary dataset;
  Distribution texts_per_class;
  Distribution groups_per_class;  // distinct duplicate groups per class
  // Classes left out before the split (pipeline::split_text_classes), sorted by name, with
  // their usable groups, and the threshold they fell below.
  int min_class_groups = 0;
  std::vector<std::pair<std::string, std::int64_t>> dropped;
  std::int64_t dropped_rows = 0;
  // pipeline::split_problem of each split that has one (train refuses the train split's).
  std::vector<std::string> split_problems;
  std::int64_t max_len = 0;
  std::int64_t vocab_pieces = 0, hash_buckets = 0;
  std::string tokenizer_kind;  // Tokenizer::kind(): sentencepiece, wordpiece[, lower-cased]
  int ways = 0, shots = 0, queries = 0;  // the episode shape the splits are checked against
  std::vector<TextSplitProfile> splits;  // train, validation, new
  std::vector<std::string> unassigned;   // classes no split took (explicit lists), sorted
};

// Loads the dataset, splits its classes and trains the tokenizer exactly as train would. Never
// throws for a split that cannot give an episode (that is what split_problem and each split's
// problem say); the errors of load_text_dataset, split_text_classes and Tokenizer::train.
TextProfile profile_text(const config::Config& config);

void to_json(nlohmann::json& j, const TextProfile& p);
// Human-readable report; `list_classes` names every class of each split (else the first 10).
void print_text_profile(const TextProfile& p, std::ostream& out, bool list_classes);

}  // namespace ml::inspect
