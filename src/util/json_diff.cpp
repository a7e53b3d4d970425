// The first difference of two JSON documents: see json_diff.hpp.
#include "util/json_diff.hpp"

namespace ml {

namespace {

std::string short_dump(const nlohmann::json& j) {
  std::string s = j.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

std::string first_json_difference(const nlohmann::json& there, const nlohmann::json& here,
                                  const std::string& prefix, const std::string& there_label,
                                  const std::string& here_label) {
  if (there == here) return "";
  const nlohmann::json patch = nlohmann::json::diff(there, here);
  const std::string pointer = patch.empty() ? "" : patch.front().value("path", "");
  std::string where = prefix;
  for (char c : pointer) where += c == '/' ? '.' : c;
  if (!where.empty() && where.front() == '.') where.erase(0, 1);
  if (where.empty()) where = "(the whole document)";
  const nlohmann::json::json_pointer at(pointer);
  auto value_at = [&](const nlohmann::json& j) {
    return j.contains(at) ? short_dump(j.at(at)) : std::string("(absent)");
  };
  return where + " (" + value_at(there) + " " + there_label + ", " + value_at(here) + " " +
         here_label + ")";
}

}  // namespace ml
