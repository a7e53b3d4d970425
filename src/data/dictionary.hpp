// Interns strings (user ids, item ids, category names, categorical values) into dense int32
// ids so that the log is held as integer columns, one copy of each distinct string.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ml::data {

class Dictionary {
 public:
  std::int32_t intern(std::string_view value) {
    auto it = index_.find(value);
    if (it != index_.end()) return it->second;
    names_.emplace_back(value);
    auto id = static_cast<std::int32_t>(names_.size() - 1);
    index_.emplace(std::string_view(names_.back()), id);  // deque keeps the view valid
    return id;
  }
  std::optional<std::int32_t> find(std::string_view value) const {
    auto it = index_.find(value);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  const std::string& name(std::int32_t id) const { return names_[static_cast<std::size_t>(id)]; }
  std::size_t size() const { return names_.size(); }

 private:
  std::deque<std::string> names_;
  std::unordered_map<std::string_view, std::int32_t> index_;
};

}  // namespace ml::data
