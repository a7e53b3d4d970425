// Config as data: one table per config section lists each JSON key once, with its member, its
// check and its docstring. The same table reads the section from JSON (strictly: unknown keys
// are errors with a suggestion), writes every field back, checks each value, and generates
// docs/CONFIG.md. Defaults live only in the structs' member initializers; the table reads them
// from a default-constructed struct.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/choices.hpp"
#include "config/config.hpp"
#include "config/json_object.hpp"

namespace ml::config {

struct TableInfo;

// A leaf value, a nested section (a JSON object), or a list of sections (an array of objects).
enum class FieldShape { kValue, kSection, kSectionList };

// What the docs and the tests know about one field, whatever its struct.
struct FieldInfo {
  std::string key;
  FieldShape shape = FieldShape::kValue;
  std::string type;                  // "integer", "number", "string", "list of strings", ...
  std::string constraint;            // ">= 1", "in [0, 1)", ... ("" when the type says it all)
  std::vector<std::string> choices;  // an enum's canonical names, for one-of fields
  std::string doc;
  Json default_value;                  // from a default-constructed struct
  const TableInfo* section = nullptr;  // the nested table, unless shape is kValue
};

struct TableInfo {
  std::string name;  // the struct's name, e.g. "CsvFormat"
  std::string doc;
  std::vector<FieldInfo> fields;
};

// A per-field check: `constraint` is what the docs show, `check` throws ConfigError
// ("PATH = VALUE: message") when a value fails it.
template <typename T>
struct Check {
  std::string constraint;
  std::function<void(const T& value, const std::string& path)> check;
};

// ---- per-type behaviour: the docs' type name, reading and writing ---------------------------

namespace detail {

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

template <typename E, typename = void>
struct has_expected : std::false_type {};
template <typename E>
struct has_expected<E, std::void_t<decltype(EnumNames<E>::expected)>> : std::true_type {};

// The value named `name`, or ConfigError "PATH = "name": must be one of: ..." with a suggestion.
template <typename E>
E parse_choice(const std::string& path, const std::string& name) {
  if (auto value = enum_from_name<E>(name)) return *value;
  if constexpr (has_expected<E>::value) require(false, path, Json(name), EnumNames<E>::expected);
  require_one_of(path, name, enum_names<E>());
  return {};  // not reached: require_one_of threw
}

template <typename T>
struct FieldType {  // bool, integers, double, string, lists of those, columns
  static std::string name() {
    if constexpr (std::is_same_v<T, bool>) return "boolean";
    if constexpr (std::is_integral_v<T>) return "integer";
    if constexpr (std::is_floating_point_v<T>) return "number";
    if constexpr (std::is_same_v<T, std::string>) return "string";
    if constexpr (std::is_same_v<T, ColumnRef>) return "column";
    if constexpr (std::is_same_v<T, std::vector<std::string>>) return "list of strings";
    if constexpr (std::is_same_v<T, std::vector<int>>) return "list of integers";
    if constexpr (std::is_same_v<T, std::vector<ColumnRef>>) return "list of columns";
    return "";
  }
  static std::vector<std::string> choices() { return {}; }
  static void read(JsonObject& o, const char* key, T& out) { o.read(key, out); }
  // What every field of this kind must satisfy (integers are range-checked by read()).
  static void check(const T& value, const std::string& path) {
    if constexpr (std::is_floating_point_v<T>)
      require(fits_float(value), path, Json(value), std::string("must ") + kFitsFloat);
  }
  static Json write(const T& value) { return Json(value); }
};

template <typename E>
struct EnumFieldType {
  static std::string name() { return "string"; }
  static std::vector<std::string> choices() { return enum_names<E>(); }
  static void read(JsonObject& o, const char* key, E& out) {
    std::string text;
    if (o.read_if_present(key, text)) out = parse_choice<E>(o.path_of(key), text);
  }
  static void check(const E&, const std::string&) {}
  static Json write(const E& value) { return enum_name(value); }
};

template <typename E>
struct EnumListFieldType {
  static std::string name() { return "list of strings"; }
  static std::vector<std::string> choices() { return enum_names<E>(); }
  static void read(JsonObject& o, const char* key, std::vector<E>& out) {
    std::vector<std::string> names;
    if (!o.read_if_present(key, names)) return;
    out.clear();
    for (std::size_t i = 0; i < names.size(); ++i)
      out.push_back(parse_choice<E>(o.path_of(key) + "[" + std::to_string(i) + "]", names[i]));
  }
  static void check(const std::vector<E>&, const std::string&) {}
  static Json write(const std::vector<E>& values) {
    Json list = Json::array();
    for (E v : values) list.push_back(enum_name(v));
    return list;
  }
};

struct DeviceFieldType {
  static std::string name() { return "string"; }
  static std::vector<std::string> choices() { return {"auto", "cpu", "cuda", "cuda:N"}; }
  static void read(JsonObject& o, const char* key, DeviceSpec& out) {
    std::string text;
    if (!o.read_if_present(key, text)) return;
    auto spec = parse_device_spec(text);
    require(spec.has_value(), o.path_of(key), Json(text),
            "must be \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"");
    out = *spec;
  }
  static void check(const DeviceSpec&, const std::string&) {}
  static Json write(const DeviceSpec& value) { return value.name(); }
};

template <typename T>
auto field_type() {
  if constexpr (std::is_enum_v<T>)
    return EnumFieldType<T>{};
  else if constexpr (std::is_same_v<T, DeviceSpec>)
    return DeviceFieldType{};
  else if constexpr (is_vector<T>::value) {
    if constexpr (std::is_enum_v<typename T::value_type>)
      return EnumListFieldType<typename T::value_type>{};
    else
      return FieldType<T>{};
  } else
    return FieldType<T>{};
}

}  // namespace detail

// ---- the table of one section ----------------------------------------------------------------

template <typename S>
class Table {
 public:
  struct Field {
    FieldInfo info;
    std::function<void(JsonObject&, S&)> read;  // nested sections: read_fields()
    // Throws ConfigError naming the field's path; `section` is the path of the section read.
    std::function<void(const S&, const std::string& section)> check;
    std::function<Json(const S&)> write;
  };
  // Checks that involve several fields of the section, run after the per-field checks; gets the
  // section's JSON path.
  using SectionCheck = std::function<void(const S&, const std::string& section)>;

  Table(std::string name, std::string doc, std::vector<Field> fields,
        SectionCheck section_check = nullptr)
      : fields_(std::move(fields)), section_check_(std::move(section_check)) {
    info_.name = std::move(name);
    info_.doc = std::move(doc);
    const S defaults{};
    for (auto& f : fields_) {
      f.info.default_value = f.write(defaults);
      info_.fields.push_back(f.info);
    }
  }

  // Reads the whole tree, then checks it: an unknown key anywhere is reported before what it
  // leaves missing ({"dta": {...}} is a typo, not a config without data.files).
  void read(JsonObject o, S& out) const {
    const std::string path = o.path();
    read_fields(std::move(o), out);
    check(out, path);
  }

  // Reads every field present, nested sections included, and rejects unknown keys.
  void read_fields(JsonObject o, S& out) const {
    for (const auto& f : fields_) f.read(o, out);
    o.finish();
  }

  // The per-field checks, then the section's own; nested sections are checked by their field.
  void check(const S& value, const std::string& path) const {
    for (const auto& f : fields_)
      if (f.check) f.check(value, path);
    if (section_check_) section_check_(value, path);
  }

  // Every field, defaults included.
  Json write(const S& value) const {
    Json j = Json::object();
    for (const auto& f : fields_) j[f.info.key] = f.write(value);
    return j;
  }

  const TableInfo& info() const { return info_; }

 private:
  std::vector<Field> fields_;
  SectionCheck section_check_;
  TableInfo info_;
};

// A leaf field whose JSON syntax is `Type`'s (a struct like detail::FieldType: name(),
// choices(), read(), check() for what every field of the kind must satisfy, write()) rather
// than that of the member's C++ type.
template <typename Type, typename S, typename T>
typename Table<S>::Field field_as(const char* key, T S::*member, const char* doc,
                                  Check<T> check = {}) {
  typename Table<S>::Field f;
  f.info.key = key;
  f.info.type = Type::name();
  f.info.choices = Type::choices();
  f.info.constraint = check.constraint;
  f.info.doc = doc;
  f.read = [key, member](JsonObject& o, S& s) { Type::read(o, key, s.*member); };
  f.check = [key, member, c = check.check](const S& s, const std::string& section) {
    const std::string path = key_path(section, key);
    Type::check(s.*member, path);
    if (c) c(s.*member, path);
  };
  f.write = [member](const S& s) { return Type::write(s.*member); };
  return f;
}

// A leaf field: `key` in JSON is `member` of S, documented by `doc`, checked by `check`.
template <typename S, typename T>
typename Table<S>::Field field(const char* key, T S::*member, const char* doc,
                               Check<T> check = {}) {
  return field_as<decltype(detail::field_type<T>())>(key, member, doc, std::move(check));
}

// A nested section (a JSON object read by its own table).
template <typename S, typename T>
typename Table<S>::Field section(const char* key, T S::*member, const Table<T>& table,
                                 const char* doc) {
  typename Table<S>::Field f;
  f.info.key = key;
  f.info.shape = FieldShape::kSection;
  f.info.type = "section";
  f.info.doc = doc;
  f.info.section = &table.info();
  f.read = [key, member, &table](JsonObject& o, S& s) {
    table.read_fields(o.object(key), s.*member);
  };
  f.check = [key, member, &table](const S& s, const std::string& section) {
    table.check(s.*member, key_path(section, key));
  };
  f.write = [member, &table](const S& s) { return table.write(s.*member); };
  return f;
}

// A list of sections (a JSON array of objects, each read by `table`).
template <typename S, typename T>
typename Table<S>::Field section_list(const char* key, std::vector<T> S::*member,
                                      const Table<T>& table, const char* doc) {
  typename Table<S>::Field f;
  f.info.key = key;
  f.info.shape = FieldShape::kSectionList;
  f.info.type = "list of sections";
  f.info.doc = doc;
  f.info.section = &table.info();
  f.read = [key, member, &table](JsonObject& o, S& s) {
    auto objects = o.objects(key);
    if (objects.empty() && !o.has(key)) return;
    (s.*member).clear();
    for (auto& object : objects) table.read_fields(object, (s.*member).emplace_back());
  };
  f.check = [key, member, &table](const S& s, const std::string& section) {
    const auto& list = s.*member;
    for (std::size_t i = 0; i < list.size(); ++i)
      table.check(list[i], key_path(section, key) + "[" + std::to_string(i) + "]");
  };
  f.write = [member, &table](const S& s) {
    Json list = Json::array();
    for (const auto& item : s.*member) list.push_back(table.write(item));
    return list;
  };
  return f;
}

// ---- checks ----------------------------------------------------------------------------------

// "1", "0.5": a bound as people write it (2.0 shows as 2).
template <typename T>
std::string bound_text(T bound) {
  if constexpr (std::is_floating_point_v<T>)
    if (bound == static_cast<T>(static_cast<long long>(bound)))
      return std::to_string(static_cast<long long>(bound));
  return Json(bound).dump();
}

// value >= minimum; `note` explains a special value ("0 = off").
template <typename T>
Check<T> at_least(T minimum, const std::string& note = "") {
  std::string bound = ">= " + bound_text(minimum);
  std::string message = "must be " + bound + (note.empty() ? "" : " (" + note + ")");
  return {bound + (note.empty() ? "" : "; " + note),
          [minimum, message](const T& v, const std::string& path) {
            require(v >= minimum, path, Json(v), message);
          }};
}

// minimum <= value <= maximum; `note` explains a special value ("0 = all cores").
template <typename T>
Check<T> between(T minimum, T maximum, const std::string& note = "") {
  std::string bound = bound_text(minimum) + " to " + bound_text(maximum);
  std::string message = "must be from " + bound + (note.empty() ? "" : " (" + note + ")");
  return {bound + (note.empty() ? "" : "; " + note),
          [minimum, maximum, message](const T& v, const std::string& path) {
            require(v >= minimum && v <= maximum, path, Json(v), message);
          }};
}

// Anything else: `constraint` for the docs, `ok` and `message` for the check.
template <typename T>
Check<T> check_that(std::string constraint, std::function<bool(const T&)> ok, std::string message) {
  return {std::move(constraint),
          [ok = std::move(ok), message = std::move(message)](const T& v, const std::string& path) {
            require(ok(v), path, Json(v), message);
          }};
}

}  // namespace ml::config
