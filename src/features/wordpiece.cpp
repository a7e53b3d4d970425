// WordPiece over a BERT vocabulary: see wordpiece.hpp.
#include "features/wordpiece.hpp"

#include <algorithm>

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include "features/tokenizer.hpp"
#include "util/errors.hpp"
#include "util/utf8.hpp"

namespace ml::features {

namespace {

constexpr std::size_t kMaxWordCodePoints = 100;  // tokenization.py's max_input_chars_per_word

bool is_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// Unicode categories C* (Cc, Cf, Cn, Co, Cs) less the whitespace controls.
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_UNASSIGNED:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return true;
    default:
      return false;
  }
}

// Categories P*, and every ASCII symbol ("^", "$", "`" are Sk/Sc but BERT splits them too).
bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  switch (u_charType(c)) {
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

// The CJK Unified Ideographs blocks tokenization.py lists (not Hangul, Hiragana or Katakana,
// which are written with spaces).
bool is_cjk_ideograph(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<UChar32> code_points(const icu::UnicodeString& s) {
  std::vector<UChar32> out;
  for (int32_t i = 0; i < s.length();) {
    const UChar32 c = s.char32At(i);
    out.push_back(c);
    i += U16_LENGTH(c);
  }
  return out;
}

void append_utf8(std::string& out, UChar32 c) {
  char bytes[U8_MAX_LENGTH];
  int32_t length = 0;
  UBool error = false;
  U8_APPEND(bytes, length, U8_MAX_LENGTH, c, error);
  if (!error) out.append(bytes, static_cast<std::size_t>(length));
}

// Lower case, then NFD without its non-spacing marks: "Héllo" -> "hello".
icu::UnicodeString lowered_without_accents(const icu::UnicodeString& word) {
  icu::UnicodeString lower(word);
  lower.toLower(icu::Locale::getRoot());
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw std::runtime_error("ICU has no NFD normaliser");
  const icu::UnicodeString decomposed = nfd->normalize(lower, status);
  if (U_FAILURE(status)) throw std::runtime_error("ICU could not normalise a word");
  icu::UnicodeString out;
  for (UChar32 c : code_points(decomposed))
    if (u_charType(c) != U_NON_SPACING_MARK) out.append(c);
  return out;
}

bool has_upper_case(std::string_view token) {
  for (UChar32 c : code_points(icu::UnicodeString::fromUTF8(
           icu::StringPiece(token.data(), static_cast<int32_t>(token.size())))))
    if (u_isupper(c)) return true;
  return false;
}

bool is_special(std::string_view token) {
  return token.size() >= 2 && token.front() == '[' && token.back() == ']';
}

// A UTF-8 byte order mark, which Windows editors put before the first line.
std::string_view without_bom(std::string_view text) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  return text;
}

std::size_t line_of(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::size_t>(std::count(
                 text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

}  // namespace

bool WordPiece::looks_like_vocab(std::string_view bytes) {
  bytes = without_bom(bytes);
  for (std::size_t start = 0; start <= bytes.size();) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "[UNK]") return true;
    start = end + 1;
  }
  return false;
}

WordPiece WordPiece::from_vocab(std::string_view text, config::LowerCase lowercase) {
  text = without_bom(text);
  if (const std::size_t at = text.find('\0'); at != std::string_view::npos)
    throw DataError("not a WordPiece vocabulary: line " + std::to_string(line_of(text, at)) +
                    " holds a NUL byte (expected one token per line, as BERT's vocab.txt)");
  if (const std::size_t at = invalid_utf8_at(text); at != std::string_view::npos)
    throw DataError("a WordPiece vocabulary must be UTF-8: line " +
                    std::to_string(line_of(text, at)) + " (byte " + std::to_string(at) +
                    ") is not");
  WordPiece w;
  w.vocab_text_ = std::string(text);
  bool cased_token = false;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto id = static_cast<std::int64_t>(w.tokens_.size());
    w.tokens_.emplace_back(line);
    w.ids_[w.tokens_.back()] = id;  // a repeated token: its last line wins, as in load_vocab
    if (!cased_token && !is_special(line) && has_upper_case(line)) cased_token = true;
    start = end + 1;
  }
  const auto find = [&](const std::string& token) -> std::optional<std::int64_t> {
    const auto at = w.ids_.find(token);
    return at == w.ids_.end() ? std::nullopt : std::optional<std::int64_t>(at->second);
  };
  const auto unknown = find("[UNK]");
  if (!unknown)
    throw DataError(
        "a text file, but neither a WordPiece vocabulary (no line \"[UNK]\" among its " +
        std::to_string(w.tokens_.size()) +
        " lines; BERT's vocab.txt has one token per line) nor a metalearn tokenizer "
        "or SentencePiece model");
  w.unknown_id_ = *unknown;
  w.classify_id_ = find("[CLS]");
  w.separator_id_ = find("[SEP]");
  w.lowercase_ = lowercase == config::LowerCase::kYes ||
                 (lowercase == config::LowerCase::kAuto && !cased_token);
  return w;
}

std::vector<std::string> WordPiece::basic_tokens(std::string_view text) const {
  // Invalid UTF-8 arrives as U+FFFD, which is dropped with the controls.
  const icu::UnicodeString input = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  std::vector<icu::UnicodeString> words(1);
  const auto end_word = [&] {
    if (!words.back().isEmpty()) words.emplace_back();
  };
  for (UChar32 c : code_points(input)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      end_word();
    } else if (is_cjk_ideograph(c)) {
      end_word();
      words.back().append(c);
      end_word();
    } else {
      words.back().append(c);
    }
  }
  std::vector<std::string> out;
  for (const icu::UnicodeString& word : words) {
    if (word.isEmpty()) continue;
    const icu::UnicodeString cleaned = lowercase_ ? lowered_without_accents(word) : word;
    std::string current;
    for (UChar32 c : code_points(cleaned)) {
      if (is_punctuation(c)) {
        if (!current.empty()) out.push_back(std::move(current));
        current.clear();
        std::string mark;
        append_utf8(mark, c);
        out.push_back(std::move(mark));
      } else {
        append_utf8(current, c);
      }
    }
    if (!current.empty()) out.push_back(std::move(current));
  }
  return out;
}

std::vector<std::int64_t> WordPiece::word_pieces(const std::string& word) const {
  std::vector<std::size_t> starts;  // byte offset of each code point, then word.size()
  for (std::size_t i = 0; i < word.size();) {
    starts.push_back(i);
    next_code_point(word, i);
  }
  starts.push_back(word.size());
  const std::size_t count = starts.size() - 1;
  if (count > kMaxWordCodePoints) return {unknown_id_};
  std::vector<std::int64_t> pieces;
  for (std::size_t begin = 0; begin < count;) {
    std::size_t end = count;
    std::optional<std::int64_t> found;
    for (; end > begin; --end) {
      std::string piece = begin > 0 ? "##" : "";
      piece.append(word, starts[begin], starts[end] - starts[begin]);
      if (const auto at = ids_.find(piece); at != ids_.end()) {
        found = at->second;
        break;
      }
    }
    if (!found) return {unknown_id_};
    pieces.push_back(*found);
    begin = end;
  }
  return pieces;
}

std::vector<std::int64_t> WordPiece::encode(std::string_view text, EncodeStats* stats) const {
  std::vector<std::int64_t> ids;
  if (classify_id_) ids.push_back(*classify_id_);
  EncodeStats local;
  for (const std::string& word : basic_tokens(text)) {
    const std::vector<std::int64_t> pieces = word_pieces(word);
    local.pieces += static_cast<std::int64_t>(pieces.size());
    if (pieces.size() == 1 && pieces[0] == unknown_id_) ++local.unknown_pieces;
    ids.insert(ids.end(), pieces.begin(), pieces.end());
  }
  if (separator_id_) ids.push_back(*separator_id_);
  if (stats) {
    stats->pieces += local.pieces;
    stats->unknown_pieces += local.unknown_pieces;
  }
  return ids;
}

std::string WordPiece::decode(const std::vector<std::int64_t>& ids) const {
  std::string out;
  for (std::int64_t id : ids) {
    if (id < 0 || id >= size()) continue;
    const std::string& token = tokens_[static_cast<std::size_t>(id)];
    if (is_special(token) && id != unknown_id_) continue;
    if (token.rfind("##", 0) == 0) {
      out.append(token, 2);
    } else {
      if (!out.empty()) out += ' ';
      out += token;
    }
  }
  return out;
}

}  // namespace ml::features
