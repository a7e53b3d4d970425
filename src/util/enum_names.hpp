// The JSON/CLI spelling of every enumeration, listed once per enum. An enum E opts in by
// specialising EnumNames<E> with `static constexpr EnumName<E> entries[] = {{E::kA, "a"}, ...}`;
// the first entry of a value is its canonical name (what is written out), later entries with
// the same value are aliases accepted on input (e.g. a tab delimiter also read as "tab").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ml {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// Specialised next to each enum; see the header comment.
template <typename E>
struct EnumNames;

// The canonical name of `value`; every value of a listed enum has one.
template <typename E>
std::string enum_name(E value) {
  for (const auto& entry : EnumNames<E>::entries)
    if (entry.value == value) return entry.name;
  return "?";  // unreachable while every enumerator is listed (the enum tests check that)
}

// The value named `name` (canonical or alias), or nullopt.
template <typename E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& entry : EnumNames<E>::entries)
    if (name == entry.name) return entry.value;
  return std::nullopt;
}

// Every value once, in declaration order of the entries.
template <typename E>
std::vector<E> enum_values() {
  std::vector<E> values;
  for (const auto& entry : EnumNames<E>::entries) {
    bool seen = false;
    for (E v : values) seen = seen || v == entry.value;
    if (!seen) values.push_back(entry.value);
  }
  return values;
}

// The canonical names, in order: what "must be one of: ..." messages and the docs list.
template <typename E>
std::vector<std::string> enum_names() {
  std::vector<std::string> names;
  for (E v : enum_values<E>()) names.push_back(enum_name(v));
  return names;
}

}  // namespace ml
