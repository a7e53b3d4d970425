// WordPiece over a BERT vocabulary (features/wordpiece.hpp). The cases of google-research/bert's
// own tokenization_test.py (the reference implementation's expectations, quoted with their
// inputs), then what the tool adds around them: [CLS]/[SEP], truncation that keeps [SEP], the
// case detection, the checkpoint round trip and the errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "features/tokenizer.hpp"
#include "features/wordpiece.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::LowerCase;
using ml::features::Tokenizer;
using ml::features::WordPiece;

std::string lines(const std::vector<std::string>& tokens) {
  std::string text;
  for (const auto& t : tokens) text += t + "\n";
  return text;
}

// tokenization_test.py's vocabulary for test_full_tokenizer and test_wordpiece_tokenizer.
const std::vector<std::string> kBertTestVocab = {
    "[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","};

}  // namespace

TEST(WordPiece, BasicTokenizationFollowsBertsReference) {
  const auto lower = WordPiece::from_vocab(lines(kBertTestVocab), LowerCase::kYes);
  const auto cased = WordPiece::from_vocab(lines(kBertTestVocab), LowerCase::kNo);
  // test_chinese: CJK ideographs are words of their own.
  EXPECT_EQ(lower.basic_tokens("ah\u535A\u63A8zz"),
            (std::vector<std::string>{"ah", "\u535A", "\u63A8", "zz"}));
  // test_basic_tokenizer_lower: whitespace, punctuation split off, lower-cased, accents gone.
  EXPECT_EQ(lower.basic_tokens(" \tHeLLo!how  \n Are yoU?  "),
            (std::vector<std::string>{"hello", "!", "how", "are", "you", "?"}));
  EXPECT_EQ(lower.basic_tokens("H\u00E9llo"), (std::vector<std::string>{"hello"}));
  // test_basic_tokenizer_no_lower.
  EXPECT_EQ(cased.basic_tokens(" \tHeLLo!how  \n Are yoU?  "),
            (std::vector<std::string>{"HeLLo", "!", "how", "Are", "yoU", "?"}));
  // Control characters (Cc, Cf) vanish, U+00A0 (Zs) separates, ASCII symbols split like
  // punctuation, and a non-Latin script keeps its letters (accents stripped only when lowering).
  EXPECT_EQ(lower.basic_tokens("a\u0007b\u200Bc\u00A0d$e^f"),
            (std::vector<std::string>{"abc", "d", "$", "e", "^", "f"}));
  EXPECT_EQ(cased.basic_tokens("Café"), (std::vector<std::string>{"Café"}));
  EXPECT_EQ(lower.basic_tokens("ÉCOLE Ñandú"), (std::vector<std::string>{"ecole", "nandu"}));
  EXPECT_EQ(lower.basic_tokens(""), std::vector<std::string>{});
  // Bytes that are not UTF-8 are dropped (they read as U+FFFD, which BERT removes).
  EXPECT_EQ(lower.basic_tokens("ab\xFF\xFE"
                               "cd"),
            (std::vector<std::string>{"abcd"}));
}

TEST(WordPiece, GreedyLongestMatchFollowsBertsReference) {
  const auto w = WordPiece::from_vocab(lines(kBertTestVocab), LowerCase::kYes);
  const auto ids_of = [&](const std::string& word) { return w.word_pieces(word); };
  // test_wordpiece_tokenizer: "unwanted" = un ##want ##ed; a word it cannot spell is one [UNK].
  EXPECT_EQ(ids_of("unwanted"), (std::vector<std::int64_t>{7, 4, 5}));
  EXPECT_EQ(ids_of("running"), (std::vector<std::int64_t>{8, 9}));
  EXPECT_EQ(ids_of("unwantedX"), (std::vector<std::int64_t>{0}));
  // Longest first: "want" (3), not "wa" (6) then a "##nt" that does not exist.
  EXPECT_EQ(ids_of("want"), (std::vector<std::int64_t>{3}));
  // test_full_tokenizer: "UNwant\u00E9d,running" -> un ##want ##ed , runn ##ing, ids [7, 4, 5, 10,
  // 8, 9], here between [CLS] (1) and [SEP] (2).
  EXPECT_EQ(w.encode("UNwant\u00E9d,running", nullptr),
            (std::vector<std::int64_t>{1, 7, 4, 5, 10, 8, 9, 2}));
  EXPECT_EQ(w.decode(w.encode("UNwant\u00E9d,running", nullptr)), "unwanted , running");
  // A word over 100 code points is [UNK] even when its pieces exist.
  std::string long_word;
  for (int i = 0; i < 51; ++i) long_word += "wa";
  EXPECT_EQ(ids_of(long_word), (std::vector<std::int64_t>{0}));
  ml::features::EncodeStats stats;
  w.encode("unwanted xyz running", &stats);
  EXPECT_EQ(stats.pieces, 6);  // un ##want ##ed [UNK] runn ##ing
  EXPECT_EQ(stats.unknown_pieces, 1);
}

TEST(WordPiece, TheTokenizerReadsAVocabFileAndKeepsSepWhenItTruncates) {
  ml::testing::TempDir dir;
  // CRLF line ends, as a vocab.txt saved on Windows.
  std::string crlf;
  for (const auto& t : kBertTestVocab) crlf += t + "\r\n";
  ml::testing::write_file(dir.file("vocab.txt"), crlf);
  const Tokenizer t = Tokenizer::from_file(dir.file("vocab.txt"));
  EXPECT_EQ(t.kind(), "wordpiece, lower-cased");  // no upper-case token: uncased
  EXPECT_EQ(t.vocab_size(), 11);
  EXPECT_EQ(t.hash_buckets(), 0);
  EXPECT_EQ(t.encode("unwanted, running"), (std::vector<std::int64_t>{1, 7, 4, 5, 10, 8, 9, 2}));
  const auto batch = t.encode_batch({"unwanted, running", "want"}, 5);
  EXPECT_EQ(batch.truncated, 1);
  EXPECT_EQ(batch.ids, (std::vector<std::int64_t>{1, 7, 4, 5, 2, 1, 3, 2, 0, 0}));
  EXPECT_EQ(batch.mask, (std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(batch.lengths, (std::vector<std::int64_t>{8, 3}));

  // What a checkpoint stores gives back a tokenizer that encodes alike, case included.
  const Tokenizer back = Tokenizer::from_bytes(t.to_bytes());
  EXPECT_EQ(back.kind(), t.kind());
  EXPECT_EQ(back.encode("UNwant\u00E9d,running"), t.encode("UNwant\u00E9d,running"));
  const Tokenizer kept = Tokenizer::from_file(dir.file("vocab.txt"), LowerCase::kNo);
  EXPECT_EQ(kept.kind(), "wordpiece");
  EXPECT_EQ(Tokenizer::from_bytes(kept.to_bytes()).encode("Want"), kept.encode("Want"));
  EXPECT_EQ(kept.encode("Want"), (std::vector<std::int64_t>{1, 0, 2}));  // "Want" is not listed
}

TEST(WordPiece, AutoKeepsTheCaseOfACasedVocabulary) {
  auto vocab = kBertTestVocab;
  vocab.push_back("Want");
  const auto cased = WordPiece::from_vocab(lines(vocab), LowerCase::kAuto);
  EXPECT_FALSE(cased.lowercase());
  EXPECT_EQ(cased.word_pieces("Want"), (std::vector<std::int64_t>{11}));
  // Upper-case letters in [SPECIAL] tokens do not make a vocabulary cased.
  EXPECT_TRUE(WordPiece::from_vocab(lines(kBertTestVocab), LowerCase::kAuto).lowercase());
  // A byte order mark before the first line is not part of its token (else "[PAD]" would be
  // "\uFEFF[PAD]", a cased token, and the vocabulary would pass for cased).
  const auto bom = WordPiece::from_vocab("\xEF\xBB\xBF" + lines(kBertTestVocab), LowerCase::kAuto);
  EXPECT_TRUE(bom.lowercase());
  EXPECT_EQ(bom.unknown_id(), 0);
  EXPECT_EQ(bom.vocab_text(), lines(kBertTestVocab));
  EXPECT_TRUE(WordPiece::looks_like_vocab("\xEF\xBB\xBF[UNK]\r\nwant\r\n"));
  // A token listed twice keeps its last line's id, as Hugging Face's load_vocab.
  vocab.push_back("want");
  EXPECT_EQ(WordPiece::from_vocab(lines(vocab), LowerCase::kAuto).word_pieces("want"),
            (std::vector<std::int64_t>{12}));
}

TEST(WordPiece, WhatIsNotAVocabularyIsSaidInOneLine) {
  ml::testing::TempDir dir;
  const auto error_of = [&](const std::string& bytes) -> std::string {
    ml::testing::write_file(dir.file("vocab.txt"), bytes);
    try {
      Tokenizer::from_file(dir.file("vocab.txt"));
    } catch (const ml::DataError& e) {
      return e.what();
    }
    return "";
  };
  // Text without [UNK]: what it lacks is named; an empty file is no tokenizer at all.
  EXPECT_TRUE(
      ml::testing::contains(error_of("want\n##ed\n"), "no line \"[UNK]\" among its 2 lines"))
      << error_of("want\n##ed\n");
  EXPECT_EQ(error_of(""), "is empty; it names a tokenizer file");
  try {
    WordPiece::from_vocab("want\n", LowerCase::kAuto);
    ADD_FAILURE() << "a vocabulary without [UNK] was read";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "no line \"[UNK]\" among its 1 lines")) << e.what();
  }
  try {
    WordPiece::from_vocab("[UNK]\nw\xE9\n", LowerCase::kAuto);
    ADD_FAILURE() << "a vocabulary that is not UTF-8 was read";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "must be UTF-8: line 2 (byte 7) is not"))
        << e.what();
  }
  // Through the file too: a vocabulary with its [UNK] is recognised and what is wrong named.
  EXPECT_TRUE(ml::testing::contains(error_of(std::string("[UNK]\nwant\n##e\0d\n", 17)),
                                    "line 3 holds a NUL byte"))
      << error_of(std::string("[UNK]\nwant\n##e\0d\n", 17));
  EXPECT_TRUE(ml::testing::contains(error_of("[UNK]\ncaf\xE9\n"), "line 2 (byte 9) is not"))
      << error_of("[UNK]\ncaf\xE9\n");
  // A damaged vocabulary inside a checkpoint is the checkpoint's problem.
  const Tokenizer t =
      Tokenizer::from_bytes(std::string("metalearn-tokenizer 1\n") +
                            R"({"kind":"wordpiece","lowercase":true})" + "\n[UNK]\nwant\n");
  EXPECT_EQ(t.encode("want"), (std::vector<std::int64_t>{1}));
  EXPECT_THROW(Tokenizer::from_bytes(std::string("metalearn-tokenizer 1\n") +
                                     R"({"kind":"wordpiece","lowercase":true})" + "\nwant\n"),
               ml::CheckpointError);
}
