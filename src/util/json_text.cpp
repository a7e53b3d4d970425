// JSON text with positions and a depth limit: see json_text.hpp.
#include "util/json_text.hpp"

#include <algorithm>

namespace ml {

namespace {

using Json = nlohmann::json;

// nlohmann's DOM builder, stopped at the depth limit and keeping the error's byte offset (its
// own messages give a line and column for syntax errors but none for a number overflow).
class LimitedDomParser : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  LimitedDomParser(Json& result, int max_depth)
      : json_sax_dom_parser(result, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool start_object(std::size_t size) {
    return deeper() && json_sax_dom_parser::start_object(size);
  }
  bool start_array(std::size_t size) { return deeper() && json_sax_dom_parser::start_array(size); }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t position, const std::string& /*last_token*/, const Exception& e) {
    error_offset_ = position;
    message_ = e.what();
    return false;
  }

  bool too_deep() const { return too_deep_; }
  std::size_t error_offset() const { return error_offset_; }
  const std::string& message() const { return message_; }

 private:
  bool deeper() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }

  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
  std::size_t error_offset_ = 0;
  std::string message_;
};

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: WHY" as WHY.
std::string reason(std::string what) {
  if (what.rfind("[json.exception.", 0) == 0) {
    const auto end = what.find("] ");
    if (end != std::string::npos) what.erase(0, end + 2);
  }
  if (what.rfind("parse error", 0) == 0) {
    const auto colon = what.find(": ");
    if (colon != std::string::npos) what.erase(0, colon + 2);
  }
  return what;
}

// The offset of the bracket that opens level `max_depth` + 1. Only called once the parser has
// accepted everything before it, so the strings it skips are well formed.
std::size_t too_deep_offset(const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return text.size();
}

}  // namespace

std::string text_position(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n');
  const auto line_start = offset == 0 ? std::string::npos : text.rfind('\n', offset - 1);
  const std::size_t column = line_start == std::string::npos ? offset + 1 : offset - line_start;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

JsonText parse_json_text(const std::string& text, int max_depth) {
  JsonText result;
  LimitedDomParser sax(result.value, max_depth);
  if (Json::sax_parse(text, &sax)) return result;
  result.value = Json(Json::value_t::discarded);
  if (sax.too_deep()) {
    result.too_deep = true;
    result.where = text_position(text, too_deep_offset(text, max_depth));
    result.problem = "nested deeper than " + std::to_string(max_depth) + " levels";
  } else {
    // nlohmann's position counts the bytes read, the offending one included.
    result.where = text_position(text, sax.error_offset() == 0 ? 0 : sax.error_offset() - 1);
    result.problem = "not valid JSON (" + reason(sax.message()) + ")";
  }
  return result;
}

}  // namespace ml
