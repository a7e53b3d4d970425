// A command's own CSV and its format options: see input_format.hpp.
#include "config/input_format.hpp"

#include <algorithm>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::config {

namespace {

// The roles of data.columns that --column may name (task_from is no column).
const std::vector<std::string>& log_roles() {
  static const std::vector<std::string> roles = {"user",  "item",   "task",  "timestamp",
                                                 "event", "rating", "price", "quantity"};
  return roles;
}

constexpr const char* kClassRole = "class_column";

// The config key a --column ROLE sets, "" for no role: a data.columns role, class_column
// (task.label.class_column) or a feature column by its place in the config
// (features.numeric[0]: data.features.numeric[0]).
// A text run's columns are data.text's: its text, and its class as a column or a path.
constexpr const char* kTextRole = "text";
constexpr const char* kPathRole = "path_column";

std::string column_key(const std::string& role, bool text_run) {
  if (text_run) {
    if (role == kTextRole) return "data.text.column";
    if (role == kClassRole) return "data.text.class_column";
    if (role == kPathRole) return "data.text.path_column";
  }
  const auto& roles = log_roles();
  if (std::find(roles.begin(), roles.end(), role) != roles.end()) return "data.columns." + role;
  if (role == kClassRole) return "task.label.class_column";
  for (const char* kind : {"numeric", "categorical", "text"}) {
    const std::string prefix = std::string("features.") + kind + "[";
    if (!starts_with(role, prefix) || role.back() != ']') continue;
    const auto index = parse_int(role.substr(prefix.size(), role.size() - prefix.size() - 1));
    if (index && *index >= 0) return "data." + role;
  }
  return "";
}

// The option that sets `key` for a command's file and what joins it to a value ("--column
// user" and "="), or nothing for a key no option sets (a side table's).
struct OptionOf {
  std::string option, joiner;
};
std::optional<OptionOf> option_of(const std::string& key) {
  if (key == "data.format.delimiter") return OptionOf{"--delimiter", " "};
  if (key == "data.time_format") return OptionOf{"--time-format", " "};
  if (key == "data.bad_rows") return OptionOf{"--bad-rows", " "};
  if (key == "task.label.class_column") return OptionOf{std::string("--column ") + kClassRole, "="};
  if (key == "data.text.column") return OptionOf{std::string("--column ") + kTextRole, "="};
  if (key == "data.text.class_column") return OptionOf{std::string("--column ") + kClassRole, "="};
  if (key == "data.text.path_column") return OptionOf{std::string("--column ") + kPathRole, "="};
  for (const char* prefix : {"data.columns.", "data.features."}) {
    const std::string p = prefix;
    if (starts_with(key, p))
      return OptionOf{"--column " + key.substr(p == "data.columns." ? p.size() : 5), "="};
  }
  return std::nullopt;
}

// "data.features.numeric[0]" as a JSON pointer: "/data/features/numeric/0".
Json::json_pointer pointer(const std::string& key) {
  std::string p = "/";
  for (char c : key) {
    if (c == '.' || c == '[')
      p += '/';
    else if (c != ']')
      p += c;
  }
  return Json::json_pointer(p);
}

}  // namespace

std::string SettingNames::name(const std::string& key) const {
  if (option_.empty()) return key;
  if (key == "data.files") return option_;
  if (key == "data.format.header") return "--header / --no-header";
  const auto o = option_of(key);
  return o ? o->option : key;
}

std::string SettingNames::setting(const std::string& key, const std::string& value) const {
  if (!option_.empty()) {
    if (key == "data.format.header" && (value == "true" || value == "false"))
      return value == "true" ? "--header" : "--no-header";
    if (const auto o = option_of(key)) return o->option + o->joiner + value;
  }
  return key + " = " + value;
}

std::string SettingNames::assigned(const std::string& key, const std::string& value) const {
  const std::string as_key = key + " = " + value;
  if (option_.empty() || !option_of(key)) return as_key;
  if (std::find(given_.begin(), given_.end(), key) != given_.end()) return setting(key, value);
  return as_key + " (the run's config)";
}

std::string SettingNames::advice(const std::string& key) const {
  if (option_.empty() || std::find(given_.begin(), given_.end(), key) != given_.end()) return "";
  const auto o = option_of(key);
  if (!o) return "";
  return "; give " + setting(key, o->joiner == "=" ? "COLUMN" : "VALUE") + " for this file";
}

std::string column_roles_text() {
  return join(log_roles(), ", ") + ", " + kClassRole +
         " (task.label.class_column), or a feature column by its place in the config: "
         "features.numeric[N], features.categorical[N], features.text[N]; a text run's are " +
         kTextRole + ", " + kClassRole + " and " + kPathRole +
         " (data.text.column, .class_column, .path_column)";
}

Config input_config(const Config& run, const InputFile& input, SettingNames* names) {
  Json j;
  to_json(j, run);
  j["data"]["files"] = Json::array({input.path});
  // The keys the options set, each with the option as written, for messages.
  std::vector<std::pair<std::string, std::string>> given;
  auto set = [&](const std::string& key, Json value, const std::string& written) {
    j[pointer(key)] = std::move(value);
    given.emplace_back(key, written);
  };
  const InputFormat& f = input.format;
  if (!f.delimiter.empty())
    set("data.format.delimiter", f.delimiter, "--delimiter '" + f.delimiter + "'");
  if (f.header) set("data.format.header", *f.header, *f.header ? "--header" : "--no-header");
  if (!f.time_format.empty())
    set("data.time_format", f.time_format, "--time-format '" + f.time_format + "'");
  if (!f.bad_rows.empty()) set("data.bad_rows", f.bad_rows, "--bad-rows '" + f.bad_rows + "'");
  for (const std::string& c : f.columns) {
    const std::string written = "--column '" + c + "'";
    const auto eq = c.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == c.size())
      throw UsageError(written +
                       ": expected ROLE=COLUMN, e.g. --column user=customer_id (a column name, "
                       "or a 1-based position)");
    const std::string role = c.substr(0, eq), column = c.substr(eq + 1);
    const bool text_run = !run.data.text.column.empty();
    const std::string key = column_key(role, text_run);
    if (key.empty()) {
      std::vector<std::string> roles = log_roles();
      roles.push_back(kClassRole);
      if (text_run) roles.insert(roles.end(), {kTextRole, kPathRole});
      const std::string suggestion = closest_match(role, roles);
      throw UsageError(written + ": no role '" + role + "'" +
                       (suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)") +
                       "; ROLE is one of " + column_roles_text());
    }
    const Json::json_pointer at = pointer(key);
    if (!j.contains(at) || j[at].is_null() || j[at] == "")
      throw UsageError(written + ": the run reads no such column (" + key +
                       " is not set in its config), so there is none to read from another");
    if (std::count_if(given.begin(), given.end(), [&](const auto& g) { return g.first == key; }))
      throw UsageError(written + ": " + role + " is given twice");
    // A whole number is a position, also when out of range: the config's check then names it.
    const bool digits = column.find_first_not_of("+-0123456789") == std::string::npos;
    const auto position = parse_int(column);
    if (digits && !position)
      throw UsageError(written + ": '" + column + "' is not a column position (1-based)");
    set(key, position ? Json(*position) : Json(column), written);
  }
  Config c;
  try {
    c = config_from_json(j);
  } catch (const ConfigError& e) {
    // "data.format.delimiter = "x": must be ..." is about the option that set the key.
    std::string m = e.what();
    for (const auto& [key, written] : given)
      if (starts_with(m, key + " = ") || starts_with(m, key + ":")) {
        const auto colon = m.find(": ");
        m = written + (colon == std::string::npos ? "" : m.substr(colon));
        break;
      }
    throw UsageError(input.option + " '" + input.path + "': " + m);
  }
  c.source_path = run.source_path;
  if (names) {
    std::vector<std::string> keys;
    for (const auto& g : given) keys.push_back(g.first);
    *names = SettingNames(input.option, std::move(keys));
  }
  return c;
}

}  // namespace ml::config
