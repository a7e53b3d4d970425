// The subword tokenizer with its hashed fallback: see tokenizer.hpp.
#include "features/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/utf8.hpp"

namespace ml::features {

namespace {

constexpr std::string_view kMagic = "metalearn-tokenizer 1";

// SentencePiece reads one sentence per call; a tab or line break inside a text (a quoted CSV
// field) is a space to us, so the n-gram and word fallback see the same spacing as the pieces.
std::string flatten_whitespace(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return i_ >= texts_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return texts_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& texts_;
  std::size_t i_ = 0;
};

void check_options(const TokenizerOptions& o) {
  if (o.vocab_size < 8)
    throw ConfigError("the tokenizer's vocabulary size is " + std::to_string(o.vocab_size) +
                      "; at least 8 pieces are needed");
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    throw ConfigError("the tokenizer's character coverage must be in (0, 1]");
  if (o.hash_buckets < 1) throw ConfigError("the tokenizer needs at least 1 hash bucket");
  if (o.ngram < 1) throw ConfigError("the tokenizer's fallback n-grams need n >= 1");
  if (o.max_ngrams_per_unknown < 0)
    throw ConfigError("the tokenizer's n-grams per unknown piece cannot be negative");
  if (o.max_training_texts < 0)
    throw ConfigError("the tokenizer's number of training texts cannot be negative");
}

// The texts SentencePiece trains on: non-blank ones, all or a seeded subset, in input order.
std::vector<std::string> training_texts(const std::vector<std::string>& texts,
                                        const TokenizerOptions& o) {
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < texts.size(); ++i)
    if (texts[i].find_first_not_of(" \t\r\n") != std::string::npos) keep.push_back(i);
  if (o.max_training_texts > 0 && keep.size() > static_cast<std::size_t>(o.max_training_texts)) {
    Rng rng(derive_seed(o.seed, hash_bytes("tokenizer-subset", 16)));
    shuffle(keep, rng);
    keep.resize(static_cast<std::size_t>(o.max_training_texts));
    std::sort(keep.begin(), keep.end());
  }
  std::vector<std::string> out;
  out.reserve(keep.size());
  for (std::size_t i : keep) out.push_back(flatten_whitespace(texts[i]));
  return out;
}

// Byte offsets where each code point (or invalid byte) of `s` starts, plus s.size().
std::vector<std::size_t> code_point_starts(std::string_view s) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size();) {
    starts.push_back(i);
    next_code_point(s, i);
  }
  starts.push_back(s.size());
  return starts;
}

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, const TokenizerOptions& options) {
  check_options(options);
  const std::vector<std::string> corpus = training_texts(texts, options);
  if (corpus.empty())
    throw DataError("the tokenizer has no text to train on (" + std::to_string(texts.size()) +
                    " texts, all blank)");
  // Single-threaded, every sentence, no shuffling: SentencePiece's EM sums over threads and its
  // sampling draws from a global generator, either of which would make the bytes vary.
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", options.model == SubwordModel::kBpe ? "bpe" : "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"num_threads", "1"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"minloglevel", "2"},  // SentencePiece logs every EM step to stderr otherwise
  };
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned int>(options.seed));
  TextIterator iterator(corpus);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok())
    throw DataError(std::string("SentencePiece could not train the tokenizer on ") +
                    std::to_string(corpus.size()) + " texts: " + status.message());
  Tokenizer t;
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  if (!processor->LoadFromSerializedProto(model).ok())
    throw std::logic_error("SentencePiece rejected the model it had just trained");
  t.processor_ = std::move(processor);
  t.model_ = std::move(model);
  t.pieces_ = t.processor_->GetPieceSize();
  t.hash_buckets_ = options.hash_buckets;
  t.ngram_ = options.ngram;
  t.max_ngrams_per_unknown_ = options.max_ngrams_per_unknown;
  return t;
}

std::string Tokenizer::to_bytes() const {
  const nlohmann::json header = {{"hash_buckets", hash_buckets_},
                                 {"ngram", ngram_},
                                 {"max_ngrams_per_unknown", max_ngrams_per_unknown_}};
  return std::string(kMagic) + "\n" + header.dump() + "\n" + model_;
}

Tokenizer Tokenizer::from_bytes(std::string_view bytes) {
  const std::size_t first = bytes.find('\n');
  if (first == std::string_view::npos || bytes.substr(0, first) != kMagic)
    throw CheckpointError("the checkpoint's tokenizer is not a metalearn tokenizer (format 1)");
  const std::size_t second = bytes.find('\n', first + 1);
  if (second == std::string_view::npos)
    throw CheckpointError("the checkpoint's tokenizer is truncated");
  Tokenizer t;
  try {
    const auto header = nlohmann::json::parse(bytes.substr(first + 1, second - first - 1));
    t.hash_buckets_ = header.at("hash_buckets").get<std::int64_t>();
    t.ngram_ = header.at("ngram").get<int>();
    t.max_ngrams_per_unknown_ = header.at("max_ngrams_per_unknown").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("the checkpoint's tokenizer header is damaged: ") + e.what());
  }
  if (t.hash_buckets_ < 1 || t.ngram_ < 1 || t.max_ngrams_per_unknown_ < 0)
    throw CheckpointError("the checkpoint's tokenizer header holds invalid options");
  t.model_ = std::string(bytes.substr(second + 1));
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(t.model_);
  if (!status.ok())
    throw CheckpointError(std::string("the checkpoint's SentencePiece model is damaged: ") +
                          status.message());
  t.processor_ = std::move(processor);
  t.pieces_ = t.processor_->GetPieceSize();
  return t;
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text, EncodeStats* stats) const {
  const std::string flat = flatten_whitespace(text);
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = processor_->Encode(flat, spt.mutable_proto());
  if (!status.ok())
    throw DataError(std::string("SentencePiece could not encode a text: ") + status.message());
  std::vector<std::int64_t> ids;
  const auto bucket = [&](char tag, std::string_view s) {
    std::string key(1, tag);
    key += '\x1f';
    key.append(s);
    return pieces_ + static_cast<std::int64_t>(hash_bytes(key.data(), key.size()) %
                                               static_cast<std::uint64_t>(hash_buckets_));
  };
  EncodeStats local;
  for (const auto& piece : spt.pieces()) {
    ++local.pieces;
    if (!processor_->IsUnknown(static_cast<int>(piece.id()))) {
      ids.push_back(piece.id());
      continue;
    }
    ++local.unknown_pieces;
    const std::size_t before = ids.size();
    // The unknown span without the word-boundary space a piece may carry, and the
    // whitespace-delimited word around it, in the text SentencePiece read.
    std::size_t begin = std::min<std::size_t>(piece.begin(), flat.size());
    const std::size_t end = std::min<std::size_t>(piece.end(), flat.size());
    while (begin < end && flat[begin] == ' ') ++begin;
    std::size_t word_begin = begin, word_end = end;
    while (word_begin > 0 && flat[word_begin - 1] != ' ') --word_begin;
    while (word_end < flat.size() && flat[word_end] != ' ') ++word_end;
    ids.push_back(bucket('w', std::string_view(flat).substr(word_begin, word_end - word_begin)));
    const std::string_view surface = std::string_view(flat).substr(begin, end - begin);
    const std::vector<std::size_t> starts = code_point_starts(surface);
    const std::size_t units = starts.size() - 1, n = static_cast<std::size_t>(ngram_);
    const std::size_t grams = units <= n ? (units > 0 ? 1 : 0) : units - n + 1;
    for (std::size_t g = 0; g < grams && g < static_cast<std::size_t>(max_ngrams_per_unknown_);
         ++g) {
      const std::size_t last = std::min(g + n, units);
      ids.push_back(bucket('c', surface.substr(starts[g], starts[last] - starts[g])));
    }
    local.fallback_ids += static_cast<std::int64_t>(ids.size() - before);
  }
  if (stats) {
    stats->pieces += local.pieces;
    stats->unknown_pieces += local.unknown_pieces;
    stats->fallback_ids += local.fallback_ids;
  }
  return ids;
}

EncodedTexts Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                     std::int64_t max_len) const {
  if (max_len < 1) throw ConfigError("the maximum token length must be at least 1");
  EncodedTexts out;
  out.rows = static_cast<std::int64_t>(texts.size());
  out.max_len = max_len;
  out.ids.assign(texts.size() * static_cast<std::size_t>(max_len), pad_id());
  out.mask.assign(out.ids.size(), 0);
  out.lengths.reserve(texts.size());
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const std::vector<std::int64_t> ids = encode(texts[r], &out.stats);
    out.lengths.push_back(static_cast<std::int64_t>(ids.size()));
    if (ids.size() > static_cast<std::size_t>(max_len)) ++out.truncated;
    const std::size_t kept = std::min(ids.size(), static_cast<std::size_t>(max_len));
    const std::size_t row = r * static_cast<std::size_t>(max_len);
    std::copy_n(ids.begin(), kept, out.ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::fill_n(out.mask.begin() + static_cast<std::ptrdiff_t>(row), kept, 1);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::vector<int> pieces;
  for (std::int64_t id : ids) {
    if (id == pad_id()) continue;
    pieces.push_back(id > 0 && id < pieces_ ? static_cast<int>(id) : processor_->unk_id());
  }
  std::string text;
  const auto status = processor_->Decode(pieces, &text);
  if (!status.ok())
    throw DataError(std::string("SentencePiece could not decode ids: ") + status.message());
  return text;
}

}  // namespace ml::features
