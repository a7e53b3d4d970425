// Strict JSON object reader: see json_object.hpp.
#include "config/json_object.hpp"

#include <algorithm>
#include <limits>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::config {

namespace {

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

[[noreturn]] void type_error(const std::string& path, const Json& v, const char* expected) {
  throw ConfigError(path + " = " + short_dump(v) + ": expected " + expected);
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

std::string JsonObject::path_of(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
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
  const Json* v = find(key);
  if (!v) return;
  if (v->is_number_integer())
    out = v->get<std::int64_t>();
  else if (v->is_number_float() &&
           v->get<double>() == static_cast<double>(static_cast<std::int64_t>(v->get<double>())))
    out = static_cast<std::int64_t>(v->get<double>());
  else
    type_error(path_of(key), *v, "an integer");
}

void JsonObject::read(const char* key, int& out) {
  std::int64_t wide = out;
  read(key, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    type_error(path_of(key), Json(wide), "an integer that fits in 32 bits");
  out = static_cast<int>(wide);
}

void JsonObject::read(const char* key, std::uint64_t& out) {
  std::int64_t wide = static_cast<std::int64_t>(out);
  read(key, wide);
  if (wide < 0) type_error(path_of(key), Json(wide), "a non-negative integer");
  out = static_cast<std::uint64_t>(wide);
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
  if (v->is_number_integer()) {
    out = {v->get<int>()};
    return;
  }
  if (!v->is_array()) type_error(path_of(key), *v, "a list of integers");
  out.clear();
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_number_integer())
      type_error(path_of(key) + "[" + std::to_string(i) + "]", e, "an integer");
    out.push_back(e.get<int>());
  }
}

namespace {
ColumnRef column_from(const Json& v, const std::string& path) {
  ColumnRef c;
  if (v.is_string()) {
    c.name = v.get<std::string>();
    if (c.name.empty()) type_error(path, v, "a column name or a 1-based column position");
  } else if (v.is_number_integer()) {
    c.position = v.get<int>();
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
