// Plain-text tables for people: columns aligned by display width, i.e. the terminal columns
// UTF-8 text takes (a combining mark 0, an East Asian wide character 2, "±" 1), not its bytes, so
// task names in any script line up. Used by inspect, eval and adapt.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ml {

// Terminal columns of UTF-8 text, as glibc's wcwidth gives them in a UTF-8 locale; a byte that
// is not valid UTF-8 and a control character count one column each.
std::size_t display_width(std::string_view utf8);

enum class Align { kLeft, kRight };

// `text` padded with spaces to `width` display columns (unchanged when already as wide).
std::string pad_to_width(std::string_view text, std::size_t width, Align align = Align::kLeft);

// The rows (the first typically a header) as lines of columns separated by `gap`, each column
// as wide as its widest cell and aligned by `align` (per column; missing entries are kLeft).
// Trailing spaces are trimmed; rows may have fewer cells than others.
std::vector<std::string> align_columns(const std::vector<std::vector<std::string>>& rows,
                                       const std::vector<Align>& align,
                                       const std::string& gap = "  ");

}  // namespace ml
