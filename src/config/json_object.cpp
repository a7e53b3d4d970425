// Strict JSON object reader: see json_object.hpp.
#include "config/json_object.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::config {

namespace {

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

[[noreturn]] void type_error(const std::string& path, const Json& v, const std::string& expected) {
  throw ConfigError(path + " = " + short_dump(v) + ": expected " + expected);
}

// The integer `v` holds, if T can hold it: 3 and 3.0 are the integer 3, while 3.5, 1e300 (for
// any T) and 4294967297 (for int) are refused rather than truncated or wrapped.
template <typename T>
T integer_from(const Json& v, const std::string& path) {
  constexpr T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  bool integral = true, fits = false;
  if (v.is_number_unsigned()) {
    fits = v.get<std::uint64_t>() <= static_cast<std::uint64_t>(hi);
  } else if (v.is_number_integer()) {
    const auto n = v.get<std::int64_t>();
    fits = n >= 0 ? static_cast<std::uint64_t>(n) <= static_cast<std::uint64_t>(hi)
                  : std::is_signed_v<T> && n >= static_cast<std::int64_t>(lo);
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    integral = std::isfinite(d) && d == std::floor(d);
    // hi + 1 is a power of two: exact as a double, where hi itself may round up to it.
    fits = integral && d >= static_cast<double>(lo) && d < static_cast<double>(hi) + 1;
  } else {
    integral = false;
  }
  if (!integral) type_error(path, v, "an integer");
  if (!fits && !std::is_signed_v<T> && v.is_number_integer() && !v.is_number_unsigned())
    type_error(path, v, "a non-negative integer");
  if (!fits)
    type_error(path, v,
               "an integer that fits in " + std::to_string(8 * sizeof(T)) + " bits (" +
                   std::to_string(lo) + " to " + std::to_string(hi) + ")");
  return v.is_number_float()      ? static_cast<T>(v.get<double>())
         : v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>())
                                  : static_cast<T>(v.get<std::int64_t>());
}

}  // namespace

std::string ColumnRef::describe() const {
  if (!name.empty()) return "'" + name + "'";
  if (position > 0) return "#" + std::to_string(position);
  return "(none)";
}

void to_json(Json& j, const ColumnRef& c) {
  if (!c.name.empty())
    j = c.name;
  else if (c.position > 0)
    j = c.position;
  else
    j = nullptr;
}

JsonObject::JsonObject(const Json& value, std::string path)
    : value_(value.is_null() ? Json::object() : value), path_(std::move(path)) {
  if (!value_.is_object())
    type_error(path_.empty() ? std::string("(top level)") : path_, value_, "an object");
}

std::string key_path(const std::string& section, const std::string& key) {
  return section.empty() ? key : section + "." + key;
}

std::string JsonObject::path_of(const char* key) const {
  return key_path(path_, key);
}

const Json* JsonObject::find(const char* key) {
  known_.emplace_back(key);
  auto it = value_.find(key);
  if (it == value_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonObject::has(const char* key) const {
  auto it = value_.find(key);
  return it != value_.end() && !it->is_null();
}

void JsonObject::read(const char* key, bool& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_boolean()) type_error(path_of(key), *v, "true or false");
  out = v->get<bool>();
}

void JsonObject::read(const char* key, std::int64_t& out) {
  if (const Json* v = find(key)) out = integer_from<std::int64_t>(*v, path_of(key));
}

void JsonObject::read(const char* key, int& out) {
  if (const Json* v = find(key)) out = integer_from<int>(*v, path_of(key));
}

void JsonObject::read(const char* key, std::uint64_t& out) {
  if (const Json* v = find(key)) out = integer_from<std::uint64_t>(*v, path_of(key));
}

void JsonObject::read(const char* key, Json& out) {
  if (const Json* v = find(key)) out = *v;
}

void JsonObject::read(const char* key, double& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_number()) type_error(path_of(key), *v, "a number");
  out = v->get<double>();
}

void JsonObject::read(const char* key, std::string& out) {
  const Json* v = find(key);
  if (!v) return;
  if (!v->is_string()) type_error(path_of(key), *v, "a string");
  out = v->get<std::string>();
}

void JsonObject::read(const char* key, std::vector<std::string>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_string()) {  // a single value is accepted where a list is expected
    out = {v->get<std::string>()};
    return;
  }
  if (!v->is_array()) type_error(path_of(key), *v, "a list of strings");
  out.clear();
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) type_error(path_of(key) + "[" + std::to_string(i) + "]", e, "a string");
    out.push_back(e.get<std::string>());
  }
}

void JsonObject::read(const char* key, std::vector<int>& out) {
  const Json* v = find(key);
  if (!v) return;
  if (v->is_number()) {  // a single value is accepted where a list is expected
    out = {integer_from<int>(*v, path_of(key))};
    return;
  }
  if (!v->is_array()) type_error(path_of(key), *v, "a list of integers");
  out.clear();
  for (std::size_t i = 0; i < v->size(); ++i)
    out.push_back(integer_from<int>((*v)[i], path_of(key) + "[" + std::to_string(i) + "]"));
}

namespace {
ColumnRef column_from(const Json& v, const std::string& path) {
  ColumnRef c;
  if (v.is_string()) {
    c.name = v.get<std::string>();
    if (c.name.empty()) type_error(path, v, "a column name or a 1-based column position");
  } else if (v.is_number_integer()) {
    c.position = integer_from<int>(v, path);
    if (c.position < 1) type_error(path, v, "a column position >= 1 (positions are 1-based)");
  } else {
    type_error(path, v, "a column name or a 1-based column position");
  }
  return c;
}
}  // namespace

void JsonObject::read(const char* key, ColumnRef& out) {
  const Json* v = find(key);
  if (!v) return;
  out = column_from(*v, path_of(key));
}

void JsonObject::read(const char* key, std::vector<ColumnRef>& out) {
  const Json* v = find(key);
  if (!v) return;
  out.clear();
  if (!v->is_array()) {
    out.push_back(column_from(*v, path_of(key)));
    return;
  }
  for (std::size_t i = 0; i < v->size(); ++i)
    out.push_back(column_from((*v)[i], path_of(key) + "[" + std::to_string(i) + "]"));
}

JsonObject JsonObject::object(const char* key) {
  const Json* v = find(key);
  return JsonObject(v ? *v : Json::object(), path_of(key));
}

std::vector<JsonObject> JsonObject::objects(const char* key) {
  const Json* v = find(key);
  std::vector<JsonObject> result;
  if (!v) return result;
  if (!v->is_array()) type_error(path_of(key), *v, "a list of objects");
  for (std::size_t i = 0; i < v->size(); ++i)
    result.emplace_back((*v)[i], path_of(key) + "[" + std::to_string(i) + "]");
  return result;
}

void JsonObject::finish() const {
  for (auto it = value_.begin(); it != value_.end(); ++it) {
    if (std::find(known_.begin(), known_.end(), it.key()) != known_.end()) continue;
    std::string message = path_of(it.key().c_str()) + ": unknown key";
    std::string suggestion = closest_match(it.key(), known_);
    if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
    message += "; allowed keys here: " + join(known_, ", ");
    throw ConfigError(message);
  }
}

void require(bool ok, const std::string& path, const Json& value, const std::string& message) {
  if (!ok) throw ConfigError(path + " = " + short_dump(value) + ": " + message);
}

void require_one_of(const std::string& path, const std::string& value,
                    const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string message = "must be one of: " + join(allowed, ", ");
  std::string suggestion = closest_match(value, allowed);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  require(false, path, Json(value), message);
}

}  // namespace ml::config
