// Escaping text that comes from data (task names, paths, file names) for the report formats, so
// a category called "<b>Snacks & Dips</b>" or "a|b" shows as written and never as markup.
#pragma once

#include <string>
#include <string_view>

namespace ml::report {

// For HTML and SVG text and attribute values: & < > " ' become character references.
std::string escape_html(std::string_view text);

// For Markdown text and table cells: & < > as character references (Markdown renderers pass
// HTML through), `|`, `\`, `*`, backticks and word-boundary `_` backslash-escaped, brackets too
// when the text could form a link, line breaks made spaces.
std::string escape_markdown(std::string_view text);

}  // namespace ml::report
