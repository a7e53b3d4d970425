// Typed feature columns, shared by the purchase log (one value per row) and side tables (one
// value per user or item). Missing numbers are NaN, missing categories -1, missing text "".
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "data/dictionary.hpp"

namespace ml::data {

inline constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
inline constexpr std::int32_t kNoId = -1;
inline constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

struct NumericColumn {
  std::string name;
  std::vector<float> values;
};

struct CategoricalColumn {
  std::string name;
  Dictionary dictionary;
  std::vector<std::int32_t> values;  // kNoId when empty
};

// Text held as one arena with offsets, not one std::string per row.
struct TextColumn {
  std::string name;
  std::string arena;
  std::vector<std::uint64_t> offsets{0};  // row i is arena[offsets[i], offsets[i+1])
  void push_back(std::string_view text) {
    arena.append(text);
    offsets.push_back(arena.size());
  }
  std::string_view at(std::size_t row) const {
    return std::string_view(arena).substr(offsets[row], offsets[row + 1] - offsets[row]);
  }
  std::size_t size() const { return offsets.size() - 1; }
};

struct FeatureTable {
  std::vector<NumericColumn> numeric;
  std::vector<CategoricalColumn> categorical;
  std::vector<TextColumn> text;
};

}  // namespace ml::data
