// Tests for the UTF-8 helpers: strict validity as RFC 3629 defines it (what the JSON library
// that writes checkpoints accepts), the `\xHH` escape of data cells, and the printable form
// every message goes through.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "util/logging.hpp"
#include "util/utf8.hpp"

namespace {

using ml::invalid_utf8_at;
using ml::is_valid_utf8;
using ml::printable;
using ml::utf8_escaped;

TEST(Utf8, ValidTextOfEveryLengthPasses) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9B\x92"));  // é € 🛒
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));                           // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));                               // U+D7FF
}

TEST(Utf8, InvalidBytesAreFoundWhereTheyAre) {
  EXPECT_EQ(invalid_utf8_at("Caf\xE9"), 3u);                       // Latin-1 é, cut off
  EXPECT_EQ(invalid_utf8_at("Caf\xE9 au lait, long enough"), 3u);  // Latin-1 é before ASCII
  EXPECT_EQ(invalid_utf8_at("twelve bytes\x80"), 12u);             // a stray continuation byte
  EXPECT_EQ(invalid_utf8_at("\xC0\xAF"), 0u);                      // overlong '/'
  EXPECT_EQ(invalid_utf8_at("\xE0\x80\xAF"), 0u);                  // overlong, three bytes
  EXPECT_EQ(invalid_utf8_at("\xED\xA0\x80"), 0u);                  // a surrogate (U+D800)
  EXPECT_EQ(invalid_utf8_at("\xF4\x90\x80\x80"), 0u);              // past U+10FFFF
  EXPECT_EQ(invalid_utf8_at("ab\xF8\x88\x80\x80\x80"), 2u);        // five-byte form
  EXPECT_EQ(invalid_utf8_at("ok \xC3"), 3u);                       // truncated at the end
}

// The inverse of cell_escaped: `\\` is a backslash, `\xHH` a byte.
std::string cell_unescaped(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
      out += '\\';
      ++i;
    } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
      out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

TEST(Utf8, CellEscapingIsInjective) {
  // The Latin-1 byte and the four characters that spell its escape are two ids.
  EXPECT_EQ(ml::cell_escaped("Caf\xE9"), "Caf\\xE9");
  EXPECT_EQ(ml::cell_escaped("Caf\\xE9"), "Caf\\\\xE9");
  EXPECT_NE(ml::cell_escaped("Caf\xE9"), ml::cell_escaped("Caf\\xE9"));
  EXPECT_EQ(ml::cell_escaped("C:\\shop\\"), "C:\\\\shop\\\\");
  EXPECT_EQ(ml::cell_escaped("Caf\xC3\xA9 au lait"), "Caf\xC3\xA9 au lait");  // unchanged
  // Every string of four of these pieces round-trips, so no two of them share an escape.
  const std::string pieces[] = {"\\", "x", "E", "9", "\xE9", "\xC3\xA9", "a"};
  std::set<std::string> escapes;
  for (int n = 0; n < 7 * 7 * 7 * 7; ++n) {
    std::string raw;
    for (int k = n, len = 0; len < 4; k /= 7, ++len) raw += pieces[k % 7];
    const std::string escaped = ml::cell_escaped(raw);
    EXPECT_TRUE(is_valid_utf8(escaped)) << printable(raw);
    EXPECT_EQ(cell_unescaped(escaped), raw) << printable(raw);
    escapes.insert(escaped);
  }
  EXPECT_EQ(escapes.size(), 7u * 7 * 7 * 7);  // the pieces spell each string once
}

TEST(Utf8, EscapingKeepsValidTextAndIsAcceptedByTheJsonWriter) {
  EXPECT_EQ(utf8_escaped("Caf\xC3\xA9"), "Caf\xC3\xA9");
  EXPECT_EQ(utf8_escaped("Caf\xE9"), "Caf\\xE9");
  // Each bad byte on its own; what follows a bad lead byte is read again.
  EXPECT_EQ(utf8_escaped("\xE9t\xE9 \xC3\xA9\xFF"), "\\xE9t\\xE9 \xC3\xA9\\xFF");
  EXPECT_EQ(utf8_escaped("\xED\xA0\x80"), "\\xED\\xA0\\x80");
  // Two Latin-1 names that differ stay different.
  EXPECT_NE(utf8_escaped("Cr\xE8me"), utf8_escaped("Cr\xE9me"));
  for (const std::string raw : {"Caf\xE9", "\xC0\xAF", "\xED\xA0\x80", "a\xF4\x90\x80\x80"}) {
    const std::string escaped = utf8_escaped(raw);
    EXPECT_TRUE(is_valid_utf8(escaped)) << escaped;
    EXPECT_NO_THROW(
        nlohmann::json(escaped).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict))
        << escaped;
    EXPECT_THROW(nlohmann::json(raw).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict),
                 nlohmann::json::exception)
        << "the JSON writer accepts '" << escaped << "': the validator is stricter than needed";
  }
}

TEST(Utf8, PrintableIsOneLineOfValidText) {
  EXPECT_EQ(printable("price column: 'Caf\xC3\xA9' is not a number"),
            "price column: 'Caf\xC3\xA9' is not a number");
  EXPECT_EQ(printable("a\nb\r\tc\x1B[31m\x7F"), "a\\x0Ab\\x0D\\x09c\\x1B[31m\\x7F");
  EXPECT_EQ(printable("\x1F\x8B\x08\xE9"), "\\x1F\\x8B\\x08\\xE9");
}

TEST(Utf8, LogLinesEscapeWhatIsNotUtf8) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("run.log");
  {
    const ml::ScopedLogFile file(path);
    spdlog::warn("reading 'caf\xE9.csv' for 'Caf\xC3\xA9'");
  }
  const std::string text = ml::testing::slurp(path);
  EXPECT_TRUE(is_valid_utf8(text)) << printable(text);
  EXPECT_NE(text.find("reading 'caf\\xE9.csv' for 'Caf\xC3\xA9'"), std::string::npos) << text;
}

}  // namespace
