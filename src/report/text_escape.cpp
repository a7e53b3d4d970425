// Escaping for the report formats: see text_escape.hpp.
#include "report/text_escape.hpp"

#include <cctype>

namespace ml::report {

namespace {

// The entity for a character both formats would read as markup (Markdown renders inline
// HTML), or nullptr.
const char* markup_entity(char c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    default:
      return nullptr;
  }
}

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (const char* entity = markup_entity(c)) {
      out += entity;
      continue;
    }
    switch (c) {
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
    if (const char* entity = markup_entity(c)) {
      out += entity;
      continue;
    }
    switch (c) {
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
