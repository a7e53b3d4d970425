// Strict reading of one JSON object into typed fields. Every read records the key, so that
// finish() can reject keys nobody asked for (typos must not silently fall back to defaults),
// and every message names the JSON path, the value found and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ml::config {

using Json = nlohmann::json;

// A column given by name (files with a header) or by 1-based position (headerless files).
struct ColumnRef {
  std::string name;
  int position = 0;  // 1-based; 0 when given by name or unset

  bool empty() const { return name.empty() && position == 0; }
  std::string describe() const;  // "'price'" or "#3"
};
void to_json(Json& j, const ColumnRef& c);

// The JSON path of `key` inside the section at `section` ("" for the top level): "task.support".
std::string key_path(const std::string& section, const std::string& key);

class JsonObject {
 public:
  // Throws ConfigError if `value` is not an object (a missing section is an empty object).
  JsonObject(const Json& value, std::string path);

  // Integers must fit the type (4294967297 is no int; 1e300 no integer at all): never wrapped.
  void read(const char* key, bool& out);
  void read(const char* key, int& out);
  void read(const char* key, std::int64_t& out);
  void read(const char* key, std::uint64_t& out);
  void read(const char* key, double& out);
  void read(const char* key, std::string& out);
  void read(const char* key, std::vector<std::string>& out);
  void read(const char* key, std::vector<int>& out);
  void read(const char* key, ColumnRef& out);
  void read(const char* key, std::vector<ColumnRef>& out);
  // Any JSON value, for a field with a syntax of its own (task.support: a number or "all").
  void read(const char* key, Json& out);

  // read(), telling whether the key was there (null counts as absent).
  template <typename T>
  bool read_if_present(const char* key, T& out) {
    const bool present = has(key);
    read(key, out);
    return present;
  }
  // Whether `key` holds a non-null value; does not count as reading it.
  bool has(const char* key) const;

  // A nested object (empty when absent); its own finish() checks its keys.
  JsonObject object(const char* key);
  // A nested array of objects (empty when absent).
  std::vector<JsonObject> objects(const char* key);

  // Throws ConfigError naming the first key that no read() asked for, with the allowed keys.
  void finish() const;

  std::string path_of(const char* key) const;
  const std::string& path() const { return path_; }

 private:
  const Json* find(const char* key);

  Json value_;
  std::string path_;
  std::vector<std::string> known_;
};

// Throws ConfigError("PATH = VALUE: MESSAGE") when `ok` is false. VALUE is the JSON dump.
void require(bool ok, const std::string& path, const Json& value, const std::string& message);

// "must be one of: a, b, c" check for string enumerations, with a "did you mean" suggestion.
void require_one_of(const std::string& path, const std::string& value,
                    const std::vector<std::string>& allowed);

}  // namespace ml::config
