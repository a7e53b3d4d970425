// Parsing JSON text that users hand us (config files, --set values, run and checkpoint
// metadata): a syntax error, a number too large for a double and nesting too deep to be
// anything of ours all come back as one message with the line and column, never as a crash.
// Depth is bounded because nlohmann's copy, comparison and dump recurse once per level: a file
// nested tens of thousands of levels deep would overflow the stack in the first of those.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace ml {

// Deeper than anything metalearn writes or reads (a config is at most 6 levels deep), shallow
// enough for every recursive nlohmann operation.
inline constexpr int kMaxJsonDepth = 100;

struct JsonText {
  nlohmann::json value;  // discarded unless ok()
  // "" when parsed, else what is wrong: "not valid JSON (syntax error while parsing ...)", "not
  // valid JSON (number overflow parsing '1e400')" or "nested deeper than 100 levels".
  std::string problem;
  std::string where;      // "line L, column C" of the problem (1-based, C counting bytes)
  bool too_deep = false;  // the problem is the depth limit (the text may be valid JSON)

  bool ok() const { return problem.empty(); }
  std::string error() const { return where + ": " + problem; }  // "line 2, column 7: not ..."
};

// Parses `text` as one JSON value, refusing more than `max_depth` nested arrays/objects.
JsonText parse_json_text(const std::string& text, int max_depth = kMaxJsonDepth);

// "line L, column C" of the byte at `offset` of `text` (1-based, as nlohmann and editors count).
std::string text_position(const std::string& text, std::size_t offset);

}  // namespace ml
