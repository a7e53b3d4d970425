// Display-width alignment: see text_table.hpp.
#include "util/text_table.hpp"

#include <locale.h>
#include <wchar.h>

#include <algorithm>

#include "util/utf8.hpp"

namespace ml {

namespace {

// glibc's built-in UTF-8 locale, whatever the process's own locale is (nullptr if missing).
locale_t utf8_locale() {
  static const locale_t locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return locale;
}

}  // namespace

std::size_t display_width(std::string_view utf8) {
  const locale_t utf8_ctype = utf8_locale();
  const locale_t previous = utf8_ctype ? uselocale(utf8_ctype) : static_cast<locale_t>(0);
  std::size_t width = 0;
  for (std::size_t i = 0; i < utf8.size();) {
    const long cp = next_code_point(utf8, i);
    const int w = cp < 0 || !utf8_ctype ? 1 : wcwidth(static_cast<wchar_t>(cp));
    width += w < 0 ? 1 : static_cast<std::size_t>(w);
  }
  if (utf8_ctype) uselocale(previous);
  return width;
}

std::string pad_to_width(std::string_view text, std::size_t width, Align align) {
  const std::size_t has = display_width(text);
  const std::string pad(has < width ? width - has : 0, ' ');
  return align == Align::kRight ? pad + std::string(text) : std::string(text) + pad;
}

std::vector<std::string> align_columns(const std::vector<std::vector<std::string>>& rows,
                                       const std::vector<Align>& align, const std::string& gap) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (row.size() > widths.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c)
      line += (c ? gap : "") +
              pad_to_width(row[c], widths[c], c < align.size() ? align[c] : Align::kLeft);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace ml
