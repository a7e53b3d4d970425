// Escaping text that comes from data (task names, paths, file names) for the report formats, so
// a category called "<b>Snacks & Dips</b>" or "a|b" shows as written and never as markup.
#pragma once

#include <string>
#include <string_view>

namespace ml::report {

// For HTML and SVG text and attribute values: & < > " ' become character references.
std::string escape_html(std::string_view text);

// For one cell of a Markdown table: HTML-escaped (Markdown renderers pass HTML through), with
// `|`, `\`, `*`, `_`, `[`, `]` and backticks backslash-escaped, line breaks made spaces.
std::string escape_markdown(std::string_view text);

}  // namespace ml::report
