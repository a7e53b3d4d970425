// WordPiece tokenization over a BERT-style vocabulary file (vocab.txt: one token per line, its
// id the line's number from 0), for pretrained backbones exported from Hugging Face's BERT
// family. The algorithm is google-research/bert's tokenization.py (Devlin et al. 2019), which
// Hugging Face's BertTokenizer reproduces:
//   1. basic tokenization: drop NUL, U+FFFD and control characters, turn whitespace into
//      spaces, put spaces around CJK ideographs, split on whitespace; with lower-casing, lower
//      each word and strip its accents (NFD, then drop non-spacing marks); split every
//      punctuation character off as a word of its own (ASCII symbols count as punctuation);
//   2. WordPiece: each word greedily as the longest vocabulary entry from its start, then the
//      longest "##"-prefixed entry from where that ended, and so on; a word that cannot be
//      spelled so, or is longer than 100 code points, becomes [UNK] as a whole;
//   3. [CLS] before and [SEP] after the pieces, when the vocabulary holds them.
// Unicode properties and normalisation come from ICU. A token listed twice keeps the id of its
// last line, as Hugging Face's load_vocab does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/choices.hpp"

namespace ml::features {

struct EncodeStats;

class WordPiece {
 public:
  // The vocabulary file's text. `lowercase` kAuto lower-cases when no token outside [brackets]
  // holds an upper-case letter (an uncased vocabulary). DataError (without the path: the
  // caller names it) when the text is not UTF-8, holds a NUL byte or lacks an [UNK] line.
  static WordPiece from_vocab(std::string_view text, config::LowerCase lowercase);
  // True when `bytes` look like a vocabulary: UTF-8 text without NUL bytes with a line "[UNK]".
  static bool looks_like_vocab(std::string_view bytes);

  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  bool lowercase() const { return lowercase_; }
  std::int64_t unknown_id() const { return unknown_id_; }
  std::optional<std::int64_t> classify_id() const { return classify_id_; }
  std::optional<std::int64_t> separator_id() const { return separator_id_; }
  const std::string& vocab_text() const { return vocab_text_; }

  // Step 1 alone: the words WordPiece then spells (for tests and for showing what it saw).
  std::vector<std::string> basic_tokens(std::string_view text) const;
  // Step 2 on one word of step 1: its pieces' ids.
  std::vector<std::int64_t> word_pieces(const std::string& word) const;
  // Steps 1-3. `stats`, when given, counts pieces (one per piece, an [UNK] word as one) and
  // unknown pieces (the [UNK] words).
  std::vector<std::int64_t> encode(std::string_view text, EncodeStats* stats) const;
  // The pieces of `ids` joined back into words ("##" pieces glued to the one before), specials
  // and ids outside the vocabulary skipped.
  std::string decode(const std::vector<std::int64_t>& ids) const;

 private:
  std::string vocab_text_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
  bool lowercase_ = true;
  std::int64_t unknown_id_ = 0;
  std::optional<std::int64_t> classify_id_, separator_id_;
};

}  // namespace ml::features
