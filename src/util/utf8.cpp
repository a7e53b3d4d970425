// UTF-8 validity and escaping: see utf8.hpp.
#include "util/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace ml {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

void append_byte_escape(std::string& out, unsigned char byte) {
  out += "\\x";
  out += kHex[byte >> 4];
  out += kHex[byte & 0x0F];
}

}  // namespace

// The ranges are Table 3-7 of the Unicode Standard (well-formed UTF-8 byte sequences): the
// second byte's range depends on the lead byte, which is what rules out overlong forms
// (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
long next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  int extra = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (lead >= 0xC2 && lead <= 0xDF) {
    extra = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    extra = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    extra = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    ++i;  // a continuation byte, C0, C1 or F5..FF
    return -1;
  }
  if (i + static_cast<std::size_t>(extra) >= s.size()) {  // cut off by the end
    ++i;
    return -1;
  }
  long cp = lead & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    const unsigned char c = byte(i + static_cast<std::size_t>(k));
    if (k == 1 ? (c < low || c > high) : (c & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += static_cast<std::size_t>(extra) + 1;
  return cp;
}

std::size_t invalid_utf8_at(std::string_view s) {
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if ((w & kHighs) == 0) {
        i += 8;
        continue;
      }
    }
    const std::size_t at = i;
    if (next_code_point(s, i) < 0) return at;
  }
  return std::string_view::npos;
}

namespace {

// append_utf8_escaped, and with `backslashes` every backslash doubled (append_cell_escaped).
void append_escaped(std::string& out, std::string_view s, bool backslashes) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t at = i;
    if (next_code_point(s, i) < 0)
      append_byte_escape(out, static_cast<unsigned char>(s[at]));
    else if (backslashes && s[at] == '\\')
      out.append("\\\\");
    else
      out.append(s, at, i - at);
  }
}

}  // namespace

void append_utf8_escaped(std::string& out, std::string_view s) {
  append_escaped(out, s, false);
}

std::string utf8_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_utf8_escaped(out, s);
  return out;
}

void append_cell_escaped(std::string& out, std::string_view s) {
  append_escaped(out, s, true);
}

std::string cell_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_cell_escaped(out, s);
  return out;
}

std::string cell_unescaped(std::string_view s) {
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && hex(s[i + 2]) >= 0 &&
               hex(s[i + 3]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 2]) * 16 + hex(s[i + 3])));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t at = i;
    const long cp = next_code_point(s, i);
    if (cp < 0 || cp < 0x20 || cp == 0x7F)
      append_byte_escape(out, static_cast<unsigned char>(s[at]));
    else
      out.append(s, at, i - at);
  }
  return out;
}

}  // namespace ml
