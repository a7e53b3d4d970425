// Escaping for the report formats: see text_escape.hpp.
#include "report/text_escape.hpp"

#include <cctype>

namespace ml::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_markdown(std::string_view text) {
  // Only what could turn into markup: quotes stay as typed, and brackets only matter when a
  // link could form, intraword underscores never start emphasis in GitHub's Markdown.
  const bool link_possible = text.find("](") != std::string_view::npos;
  auto alnum = [&](std::size_t i) {
    return i < text.size() && std::isalnum(static_cast<unsigned char>(text[i]));
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\r':
      case '\n':
        out += ' ';
        break;
      case '_':
        if (i > 0 && alnum(i - 1) && alnum(i + 1)) {
          out += c;
          break;
        }
        [[fallthrough]];
      case '|':
      case '\\':
      case '*':
      case '`':
        out += '\\';
        out += c;
        break;
      case '[':
      case ']':
        if (link_possible) out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ml::report
