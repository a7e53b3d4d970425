// Category paths: see category_path.hpp.
#include "data/category_path.hpp"

#include <nlohmann/json.hpp>

#include "util/strings.hpp"

namespace ml::data {

namespace {

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr const char* kWrapperExpected =
    "expected a JSON array holding one path string, e.g. "
    "[\"A >> B\"]";

}  // namespace

ParsedPath parse_category_path(std::string_view cell, const std::string& separator) {
  ParsedPath out;
  std::string_view path = trim(cell);
  std::string unwrapped;
  if (!path.empty() && path.front() == '[') {
    const auto fail = [&](const std::string& what) {
      out.error = "category path " + quoted_value(cell) + " " + what + "; " + kWrapperExpected;
      return out;
    };
    const nlohmann::json parsed = nlohmann::json::parse(path, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return fail("is not valid JSON");
    if (!parsed.is_array()) return fail("is not a JSON array");
    if (parsed.empty()) return fail("is an empty JSON array");
    if (parsed.size() > 1)
      return fail("is a JSON array of " + std::to_string(parsed.size()) + " elements");
    if (!parsed[0].is_string()) return fail("holds a " + std::string(parsed[0].type_name()));
    unwrapped = parsed[0].get<std::string>();
    path = unwrapped;
  }
  if (trim_blanks(path).empty()) {
    out.error = "empty category path";
    return out;
  }
  const std::string_view bare_separator = trim_blanks(separator);
  std::size_t start = 0;
  while (true) {
    const std::size_t at = separator.empty() ? std::string_view::npos : path.find(separator, start);
    const std::string_view level =
        trim_blanks(path.substr(start, at == std::string_view::npos ? path.npos : at - start));
    // A separator at either end whose padding was trimmed away ("A >> B >>") still marks an
    // empty level, rather than leaving "B >>" as a name.
    const bool leading =
        !bare_separator.empty() && start == 0 && starts_with(level, bare_separator);
    const bool trailing = !bare_separator.empty() && !leading && at == std::string_view::npos &&
                          level.size() >= bare_separator.size() &&
                          level.substr(level.size() - bare_separator.size()) == bare_separator;
    if (level.empty() || leading || trailing) {
      out.error = "category path " + quoted_value(path) + " has an empty level " +
                  std::to_string(out.levels.size() + (trailing ? 2 : 1)) +
                  " (around the separator " + quoted_value(separator) + ")";
      out.levels.clear();
      return out;
    }
    out.levels.emplace_back(level);
    if (at == std::string_view::npos) break;
    start = at + separator.size();
  }
  return out;
}

std::string path_class(const std::vector<std::string>& levels, const CategoryPathSpec& spec) {
  const auto level = static_cast<std::size_t>(spec.level);
  if (spec.level < 1 || levels.size() < level) return "";
  if (spec.mode == PathLevelMode::kLevel) return levels[level - 1];
  std::string out = levels[0];
  for (std::size_t i = 1; i < level; ++i) out += spec.separator + levels[i];
  return out;
}

std::string path_too_short_reason(const std::vector<std::string>& levels,
                                  const CategoryPathSpec& spec) {
  return "category path has " + count_of(static_cast<long long>(levels.size()), "level") +
         ", fewer than the " + std::to_string(spec.level) + " that " + describe_path_level(spec) +
         " needs";
}

std::string describe_path_level(const CategoryPathSpec& spec) {
  return (spec.mode == PathLevelMode::kLevel ? "level " : "prefix up to level ") +
         std::to_string(spec.level);
}

}  // namespace ml::data
