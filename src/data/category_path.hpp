// Hierarchical category paths as shops export them ("Clothing >> Women's Clothing >> Shorts"),
// and the class a path gives at one level: the level's own name ("level L") or the path up to
// it ("prefix up to level L", the Flipkart README's advice, since sub-category names such as
// "Shorts" repeat under different parents). Flipkart wraps each path in a JSON array holding
// one string (`["A >> B >> C"]`); a cell that starts with '[' is read as such a wrapper.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/choices.hpp"

namespace ml::data {

// kLevel: the L-th name alone ("B" for level 2 of "A >> B >> C"); kPrefix: the names up to
// level L joined by the separator ("A >> B"). The config's data.text.path_mode.
using PathLevelMode = config::PathMode;

struct CategoryPathSpec {
  std::string separator = " >> ";  // between levels; matched exactly (spaces included)
  int level = 1;                   // 1-based
  PathLevelMode mode = PathLevelMode::kPrefix;
};

// A path cell split into its levels, or why it could not be. Levels are trimmed of ASCII
// spaces and tabs; empty levels ("A >>  >> C", a trailing separator) are an error, since they
// would make level numbers disagree between rows.
struct ParsedPath {
  std::vector<std::string> levels;
  std::string error;  // "" when parsed; else what was found and what was expected
};

// Parses `cell`: either the path itself, or (when it starts with '[' after spaces) a JSON array
// holding exactly one string that is the path. A malformed wrapper (not JSON, not an array, no
// element, more than one, an element that is not a string) gives an error naming the value and
// what was expected; so does an empty path. Never throws.
ParsedPath parse_category_path(std::string_view cell, const std::string& separator);

// The class `path` gives under `spec`, or "" when it has fewer than spec.level levels (the
// caller reports the row as bad: see path_too_short_reason).
std::string path_class(const std::vector<std::string>& levels, const CategoryPathSpec& spec);

// The bad-row reason for a path with fewer levels than spec.level.
std::string path_too_short_reason(const std::vector<std::string>& levels,
                                  const CategoryPathSpec& spec);

// "level 2" or "prefix up to level 2": how messages and reports name the class a spec takes.
std::string describe_path_level(const CategoryPathSpec& spec);

}  // namespace ml::data
