// UTF-8 validity: what the tool accepts as text (strict RFC 3629, the same rules as the JSON
// library that writes checkpoints and reports), and the one escape that turns any bytes into
// valid UTF-8 - for data cells that are not UTF-8 (Latin-1 exports) and for every message a
// user sees (error lines naming a damaged file's bytes, a binary file's header).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ml {

// Decodes one UTF-8 sequence at `i` (strict: no overlong forms, surrogates or code points past
// U+10FFFF, as RFC 3629 section 4 allows); returns the code point and moves `i` past it, or
// returns -1 for a byte that does not start a valid sequence and moves `i` by that one byte.
long next_code_point(std::string_view s, std::size_t& i);

// Offset of the first byte of `s` that is not part of valid UTF-8; npos when `s` is valid.
// Pure ASCII is checked eight bytes at a time, since nearly every cell of a log is ASCII.
std::size_t invalid_utf8_at(std::string_view s);
inline bool is_valid_utf8(std::string_view s) {
  return invalid_utf8_at(s) == std::string_view::npos;
}

// Appends `s` with every byte that is not part of valid UTF-8 written as the four characters
// `\xHH` (upper-case hex), so "Caf\xE9" (Latin-1) becomes the text `Caf\xE9`; valid text is
// copied unchanged.
void append_utf8_escaped(std::string& out, std::string_view s);
std::string utf8_escaped(std::string_view s);

// A data cell's text (ids, names, categories): append_utf8_escaped, and every backslash
// doubled (`\\`), so that the escape is injective: the Latin-1 cell "Caf\xE9" gives `Caf\xE9`
// and the UTF-8 cell that holds those four characters typed out gives `Caf\\xE9`, two ids.
// It decodes back unambiguously (`\\` is a backslash, `\xHH` a byte). Valid text without a
// backslash is copied unchanged.
void append_cell_escaped(std::string& out, std::string_view s);
std::string cell_escaped(std::string_view s);
// The bytes cell_escaped(s) came from: `\\` back to one backslash, `\xHH` back to its byte (for
// files that store ids as raw bytes, such as binary embedding tables).
std::string cell_unescaped(std::string_view s);

// `s` as one printable line of valid UTF-8 for a message: invalid bytes as above, and control
// characters (C0, DEL) as `\xHH` too, so that no message can move the cursor, ring the bell
// or break the one-line-per-error rule.
std::string printable(std::string_view s);

}  // namespace ml
