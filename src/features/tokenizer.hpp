// The subword tokenizer of text tasks: a SentencePiece model (Kudo & Richardson 2018,
// arXiv:1808.06226; unigram LM or BPE) trained in memory on training-split text only, plus a
// hashed fallback for what the pieces cannot spell, so that an unseen character still gets an id
// with some identity instead of the one shared "unknown" id.
//
// Id layout (the rows of the transformer's token embedding table, vocab_size() in all):
//   [0, piece_count())                 SentencePiece pieces; 0 is padding, 1 is <unk> (never
//                                      emitted: every unknown piece is replaced, see below)
//   [piece_count(), vocab_size())      hash_buckets fallback buckets (none for a SentencePiece
//                                      model read as it is: from_file)
// A piece SentencePiece marks unknown (characters the training text did not cover, e.g. an
// emoji or another script) is replaced by the bucket of the whole whitespace-delimited word it
// occurs in, followed by the buckets of up to max_ngrams_per_unknown character n-grams of the
// unknown surface (code points, not bytes). The word bucket lets "naïve" and "naïvely" differ
// from every other word with an unseen letter; the n-grams let two words sharing unseen
// characters share rows. Buckets are hash_bytes (util/rng.hpp) of a tagged string, so they are
// the same on every machine.
//
// SentencePiece runs in a module of its own, opened at first use (sentencepiece/shim.h says
// why); a missing module is an Error with exit code kRuntime.
//
// A BERT vocabulary (vocab.txt) read by from_file tokenizes with WordPiece instead
// (features/wordpiece.hpp): its own ids, [CLS] and [SEP] around each text, no fallback buckets.
//
// Deterministic: training runs SentencePiece single-threaded on every given text in order
// (SentencePiece's own sampling is off; max_training_texts picks a seeded subset instead), and
// the same texts, options and seed give the same model bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace ml::features {

class WordPiece;

using SubwordModel = config::SubwordModel;  // features.tokenizer.model

struct TokenizerOptions {
  SubwordModel model = SubwordModel::kUnigram;
  // Pieces SentencePiece aims for, a soft limit: a small corpus gets fewer (at least 8).
  std::int64_t vocab_size = 2000;
  // Fraction of the training text's characters the pieces must cover; the rarest rest become
  // unknown (SentencePiece's default 0.9995, 1.0 for a small alphabet).
  double character_coverage = 0.9995;
  std::int64_t hash_buckets = 1024;     // fallback ids after the pieces (>= 1)
  int ngram = 3;                        // code points per fallback n-gram (>= 1)
  int max_ngrams_per_unknown = 4;       // n-gram ids per unknown piece (>= 0)
  std::int64_t max_training_texts = 0;  // 0: every text; else a seeded subset of this many
  std::uint64_t seed = 0;
};

// The options features.tokenizer (`config`) asks for, seeded with the run's seed.
TokenizerOptions tokenizer_options(const config::TokenizerConfig& config, std::uint64_t seed);

// Counts of an encoding, for inspect (token length percentiles, OOV rate).
struct EncodeStats {
  std::int64_t pieces = 0;          // SentencePiece pieces, unknown ones included
  std::int64_t unknown_pieces = 0;  // pieces replaced by the hashed fallback
  std::int64_t fallback_ids = 0;    // ids the fallback emitted for them
  // Unknown pieces per piece: the OOV rate. 0 when nothing was encoded.
  double oov_rate() const {
    return pieces == 0 ? 0.0 : static_cast<double>(unknown_pieces) / static_cast<double>(pieces);
  }
};

// A batch of texts as padded id rows, row-major, ready for a tensor (models/transformer.hpp's
// token_batch): ids [rows, max_len] int64 with pad_id() after each text's ids, mask [rows,
// max_len] with 1 on real tokens. Texts longer than max_len keep their first max_len ids.
struct EncodedTexts {
  std::int64_t rows = 0;
  std::int64_t max_len = 0;
  std::vector<std::int64_t> ids;
  std::vector<std::uint8_t> mask;
  std::vector<std::int64_t> lengths;  // ids per text before truncation (length percentiles)
  std::int64_t truncated = 0;         // texts longer than max_len
  EncodeStats stats;
};

class Tokenizer {
 public:
  // Trains on `texts` (the training split's texts only: validation and new classes must not
  // shape the vocabulary). ConfigError for invalid options, DataError when the texts hold no
  // character to learn from or SentencePiece refuses them (its message is kept).
  static Tokenizer train(const std::vector<std::string>& texts, const TokenizerOptions& options);
  // The bytes to store in a checkpoint: a header line with the fallback's options, then the
  // serialised SentencePiece model. from_bytes gives back a tokenizer that encodes identically;
  // CheckpointError when `bytes` are not a tokenizer's.
  std::string to_bytes() const;
  static Tokenizer from_bytes(std::string_view bytes);
  // A tokenizer file: to_bytes() written out (what `metalearn export` writes beside a text
  // run's module); a serialised SentencePiece model (.model) used as it is: its own ids, no
  // fallback buckets (hash_buckets() 0: an unknown piece keeps SentencePiece's unknown id); or
  // a WordPiece vocabulary (BERT's vocab.txt, lower-cased as `lowercase` says). DataError
  // (without the path: the caller names it) when the file cannot be read or is none of them.
  static Tokenizer from_file(const std::string& path,
                             config::LowerCase lowercase = config::LowerCase::kAuto);
  // "sentencepiece" or "wordpiece" (with ", lower-cased" when it lowers), for logs and inspect.
  std::string kind() const;

  // Padding; BERT's vocabularies hold [PAD] there too (a masked module ignores it anyway).
  static constexpr std::int64_t pad_id() { return 0; }
  std::int64_t piece_count() const { return pieces_; }
  std::int64_t hash_buckets() const { return hash_buckets_; }
  // Rows the token embedding table needs: pieces plus fallback buckets.
  std::int64_t vocab_size() const { return pieces_ + hash_buckets_; }

  // The ids of one text (no padding, no truncation); tabs and line breaks count as spaces.
  // `stats`, when given, is added to.
  std::vector<std::int64_t> encode(std::string_view text, EncodeStats* stats = nullptr) const;
  // Every text padded or truncated to max_len (>= 1) ids; a WordPiece text cut short still
  // ends with [SEP], as Hugging Face truncates.
  EncodedTexts encode_batch(const std::vector<std::string>& texts, std::int64_t max_len) const;
  // The text of piece ids (padding skipped; fallback buckets read as SentencePiece's unknown
  // mark " ⁇ "): for showing what a model saw.
  std::string decode(const std::vector<std::int64_t>& ids) const;

 private:
  Tokenizer() = default;
  std::shared_ptr<const void> processor_;       // SentencePiece's, from its module (tokenizer.cpp)
  std::shared_ptr<const WordPiece> wordpiece_;  // instead of processor_ for a vocab.txt
  std::string model_;                           // serialised SentencePiece model
  std::int64_t pieces_ = 0;
  std::int64_t hash_buckets_ = 0;
  int ngram_ = 3;
  int max_ngrams_per_unknown_ = 4;
};

}  // namespace ml::features
