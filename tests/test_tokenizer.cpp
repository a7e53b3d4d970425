// Tests of the subword tokenizer: deterministic training, the byte round trip a checkpoint
// relies on, padding and masks, the hashed fallback for unseen characters, and a smoke run on
// banking77 (skipped when ../shared lacks it).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "data/csv_reader.hpp"
#include "features/tokenizer.hpp"
#include "util/errors.hpp"

namespace {

using ml::features::EncodedTexts;
using ml::features::EncodeStats;
using ml::features::Tokenizer;
using ml::features::TokenizerOptions;

// Customer-service sentences over an ASCII alphabet, varied enough for a few hundred pieces.
std::vector<std::string> corpus() {
  const std::vector<std::string> subjects = {"my card",     "the transfer", "my refund",
                                             "the payment", "my pin",       "the top up"};
  const std::vector<std::string> verbs = {"was declined", "is pending", "has not arrived",
                                          "failed again", "was charged twice"};
  const std::vector<std::string> tails = {"today", "at the shop", "yesterday", "from abroad",
                                          "please help"};
  std::vector<std::string> texts;
  for (const auto& s : subjects)
    for (const auto& v : verbs)
      for (const auto& t : tails) texts.push_back(s + " " + v + " " + t);
  return texts;
}

TokenizerOptions small_options() {
  TokenizerOptions o;
  o.vocab_size = 120;
  o.character_coverage = 1.0;
  o.hash_buckets = 64;
  return o;
}

TEST(Tokenizer, TrainingIsDeterministicAndTheBytesRoundTrip) {
  const auto texts = corpus();
  for (auto model : {ml::features::SubwordModel::kUnigram, ml::features::SubwordModel::kBpe}) {
    TokenizerOptions o = small_options();
    o.model = model;
    const Tokenizer a = Tokenizer::train(texts, o);
    const Tokenizer b = Tokenizer::train(texts, o);
    EXPECT_EQ(a.to_bytes(), b.to_bytes());
    EXPECT_GT(a.piece_count(), 20);
    EXPECT_LE(a.piece_count(), o.vocab_size);
    EXPECT_EQ(a.vocab_size(), a.piece_count() + o.hash_buckets);

    const Tokenizer loaded = Tokenizer::from_bytes(a.to_bytes());
    EXPECT_EQ(loaded.to_bytes(), a.to_bytes());
    EXPECT_EQ(loaded.vocab_size(), a.vocab_size());
    for (const std::string text :
         {"my card was declined today", "the refund failed twice", "please help with my pin"}) {
      const auto ids = a.encode(text);
      EXPECT_EQ(loaded.encode(text), ids) << text;
      EXPECT_EQ(a.decode(ids), text);  // known characters only: the pieces spell it back
      for (auto id : ids) {
        EXPECT_GT(id, Tokenizer::pad_id());
        EXPECT_LT(id, a.piece_count());
      }
    }
  }
}

TEST(Tokenizer, TheSeedPicksTheTrainingSubset) {
  const auto texts = corpus();
  TokenizerOptions o = small_options();
  o.max_training_texts = 20;
  o.seed = 1;
  const std::string one = Tokenizer::train(texts, o).to_bytes();
  EXPECT_EQ(Tokenizer::train(texts, o).to_bytes(), one);
  o.seed = 2;
  EXPECT_NE(Tokenizer::train(texts, o).to_bytes(), one);
}

TEST(Tokenizer, PadsTruncatesAndMasks) {
  const Tokenizer t = Tokenizer::train(corpus(), small_options());
  const std::vector<std::string> texts = {"my card", "", "the transfer was charged twice today"};
  const std::int64_t full = static_cast<std::int64_t>(t.encode(texts[2]).size());
  ASSERT_GT(full, 3);
  const std::int64_t max_len = full - 1;
  const EncodedTexts e = t.encode_batch(texts, max_len);
  ASSERT_EQ(e.rows, 3);
  ASSERT_EQ(e.ids.size(), static_cast<std::size_t>(3 * max_len));
  EXPECT_EQ(e.truncated, 1);
  EXPECT_EQ(e.lengths[1], 0);
  EXPECT_EQ(e.lengths[2], full);
  for (std::int64_t r = 0; r < 3; ++r) {
    const auto ids = t.encode(texts[static_cast<std::size_t>(r)]);
    for (std::int64_t j = 0; j < max_len; ++j) {
      const std::size_t k = static_cast<std::size_t>(r * max_len + j);
      const bool real = j < static_cast<std::int64_t>(ids.size());
      EXPECT_EQ(e.mask[k], real ? 1 : 0) << r << "," << j;
      EXPECT_EQ(e.ids[k], real ? ids[static_cast<std::size_t>(j)] : Tokenizer::pad_id());
    }
  }
  // Line breaks inside a quoted CSV field are spaces.
  EXPECT_EQ(t.encode("my card\r\nwas declined"), t.encode("my card was declined"));
  EXPECT_THROW(t.encode_batch(texts, 0), ml::ConfigError);
}

TEST(Tokenizer, UnseenCharactersFallBackToHashedWordAndNgramBuckets) {
  const Tokenizer t = Tokenizer::train(corpus(), small_options());
  EncodeStats known;
  t.encode("my card was declined", &known);
  EXPECT_EQ(known.unknown_pieces, 0);
  EXPECT_EQ(known.oov_rate(), 0.0);

  // 'ï' never occurs in training: SentencePiece marks it unknown.
  auto fallback = [&](const std::string& text, EncodeStats& stats) {
    std::vector<std::int64_t> out;
    for (auto id : t.encode(text, &stats)) {
      EXPECT_NE(id, 1) << "the shared <unk> id leaked into " << text;
      if (id >= t.piece_count()) out.push_back(id);
    }
    return out;
  };
  EncodeStats s1, s2, s3;
  const auto naive = fallback("my card is naïve", s1);
  const auto naively = fallback("my card naïvely failed", s2);
  const auto other = fallback("my card is näive", s3);
  EXPECT_EQ(s1.unknown_pieces, 1);
  EXPECT_GT(s1.oov_rate(), 0.0);
  EXPECT_EQ(s1.fallback_ids, 2);  // the word's bucket, then the one n-gram of "ï"
  ASSERT_EQ(naive.size(), 2u);
  ASSERT_EQ(naively.size(), 2u);
  ASSERT_EQ(other.size(), 2u);
  for (auto id : naive) EXPECT_LT(id, t.vocab_size());
  EXPECT_NE(naive[0], naively[0]);                // different words
  EXPECT_EQ(naive[1], naively[1]);                // the same unseen character
  EXPECT_NE(naive[1], other[1]);                  // 'ï' and 'ä'
  EXPECT_EQ(fallback("naïve", s1)[0], naive[0]);  // a word's bucket does not depend on context

  // A run of unseen characters: n-grams of code points, at most max_ngrams_per_unknown.
  EncodeStats s4;
  const auto cjk = fallback("my card 日本語のカード", s4);
  EXPECT_EQ(s4.unknown_pieces, 1);
  EXPECT_EQ(cjk.size(), 1u + 4u);
}

TEST(Tokenizer, RejectsBadOptionsAndDamagedBytes) {
  TokenizerOptions o = small_options();
  o.vocab_size = 4;
  EXPECT_THROW(Tokenizer::train(corpus(), o), ml::ConfigError);
  o = small_options();
  o.hash_buckets = 0;
  EXPECT_THROW(Tokenizer::train(corpus(), o), ml::ConfigError);
  EXPECT_THROW(Tokenizer::train({"", "  \n"}, small_options()), ml::DataError);

  const std::string bytes = Tokenizer::train(corpus(), small_options()).to_bytes();
  EXPECT_THROW(Tokenizer::from_bytes("not a tokenizer"), ml::CheckpointError);
  EXPECT_THROW(Tokenizer::from_bytes(bytes.substr(0, bytes.size() / 2)), ml::CheckpointError);
  std::string header_damaged = bytes;
  header_damaged[header_damaged.find('{')] = '[';
  EXPECT_THROW(Tokenizer::from_bytes(header_damaged), ml::CheckpointError);
}

std::vector<std::string> csv_texts(const std::string& path) {
  ml::data::CsvReader reader(path, {});
  const auto& header = reader.header();
  const auto column =
      static_cast<std::size_t>(std::find(header.begin(), header.end(), "text") - header.begin());
  std::vector<std::string> texts;
  ml::data::CsvRecord record;
  while (reader.next(record)) texts.emplace_back(record.fields.at(column));
  return texts;
}

std::int64_t percentile(std::vector<std::int64_t> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(TokenizerRealData, Banking77) {
  const std::string dir = std::string(ML_SHARED_DIR) + "/datasets/banking77";
  if (!std::filesystem::exists(dir + "/train.csv")) GTEST_SKIP() << "no banking77 at " << dir;
  const auto train = csv_texts(dir + "/train.csv");
  const auto test = csv_texts(dir + "/test.csv");
  ASSERT_EQ(train.size(), 10003u);
  ASSERT_EQ(test.size(), 3080u);
  TokenizerOptions o;
  o.vocab_size = 2000;
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer t = Tokenizer::train(train, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(t.piece_count(), 1000);
  EXPECT_LE(t.piece_count(), 2000);
  const EncodedTexts e = t.encode_batch(test, 64);
  const auto p50 = percentile(e.lengths, 0.5), p90 = percentile(e.lengths, 0.9),
             p99 = percentile(e.lengths, 0.99), max = percentile(e.lengths, 1.0);
  std::cout << "banking77: " << t.piece_count() << " pieces trained on " << train.size()
            << " texts in " << seconds << " s; test token lengths p50 " << p50 << " p90 " << p90
            << " p99 " << p99 << " max " << max << "; OOV rate " << e.stats.oov_rate() << " ("
            << e.stats.unknown_pieces << " of " << e.stats.pieces
            << " pieces); truncated at 64: " << e.truncated << "\n";
  // Short utterances: around a dozen subwords each, nearly every character seen in training.
  EXPECT_GE(p50, 5);
  EXPECT_LE(p50, 30);
  EXPECT_LT(e.stats.oov_rate(), 0.01);
}

}  // namespace
