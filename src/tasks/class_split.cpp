// Class splits: see class_split.hpp.
#include "tasks/class_split.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"

namespace ml::tasks {

namespace {
constexpr std::uint64_t kClassSplitPurpose = 0x636c61737373706cULL;  // "classspl"

void sort_by_name(std::vector<std::int32_t>& ids, const std::vector<std::string>& names) {
  std::sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) {
    return names[static_cast<std::size_t>(a)] < names[static_cast<std::size_t>(b)];
  });
}
}  // namespace

const char* split_part_name(ClassSplitPart part) {
  switch (part) {
    case ClassSplitPart::kTrain:
      return "train";
    case ClassSplitPart::kValidation:
      return "validation";
    case ClassSplitPart::kNew:
      return "new";
  }
  return "?";
}

const std::vector<std::int32_t>& ClassSplit::classes(ClassSplitPart part) const {
  switch (part) {
    case ClassSplitPart::kValidation:
      return validation;
    case ClassSplitPart::kNew:
      return new_classes;
    case ClassSplitPart::kTrain:
      break;
  }
  return train;
}

ClassSplit split_classes(const std::vector<std::string>& class_names, const ClassSplitSpec& spec) {
  ClassSplit split;
  const auto n = static_cast<std::int32_t>(class_names.size());
  if (spec.explicit_lists()) {
    std::map<std::string, std::int32_t> id_of;
    for (std::int32_t c = 0; c < n; ++c) id_of[class_names[static_cast<std::size_t>(c)]] = c;
    std::vector<const char*> listed_in(class_names.size(), nullptr);
    const auto take = [&](const std::vector<std::string>& list, ClassSplitPart part,
                          std::vector<std::int32_t>& out) {
      for (const std::string& name : list) {
        const auto it = id_of.find(name);
        if (it == id_of.end()) {
          std::string message = std::string("the ") + split_part_name(part) +
                                " class list names '" + name + "', which no row has";
          const std::string close = closest_match(name, class_names);
          if (!close.empty()) message += " (did you mean '" + close + "'?)";
          throw ConfigError(message);
        }
        const char*& seen = listed_in[static_cast<std::size_t>(it->second)];
        if (seen != nullptr)
          throw ConfigError("class '" + name + "' is in both the " + seen + " and the " +
                            split_part_name(part) + " class lists");
        seen = split_part_name(part);
        out.push_back(it->second);
      }
    };
    take(spec.train, ClassSplitPart::kTrain, split.train);
    take(spec.validation, ClassSplitPart::kValidation, split.validation);
    take(spec.new_classes, ClassSplitPart::kNew, split.new_classes);
    for (std::int32_t c = 0; c < n; ++c)
      if (listed_in[static_cast<std::size_t>(c)] == nullptr)
        (spec.train.empty() ? split.train : split.unassigned).push_back(c);
  } else {
    const auto check = [](double f, const char* what) {
      if (!(f >= 0.0 && f < 1.0))
        throw ConfigError(std::string("the ") + what +
                          " fraction of classes must be in [0, 1), not " + short_number(f));
    };
    check(spec.validation_fraction, "validation");
    check(spec.new_fraction, "new");
    const auto n_new = static_cast<std::int32_t>(std::lround(n * spec.new_fraction));
    const auto n_validation = static_cast<std::int32_t>(std::lround(n * spec.validation_fraction));
    if (n > 0 && n_new + n_validation >= n)
      throw ConfigError("class fractions new " + short_number(spec.new_fraction) +
                        " and validation " + short_number(spec.validation_fraction) + " of " +
                        count_of(n, "class") + " leave no class for training");
    std::vector<std::pair<std::uint64_t, std::int32_t>> ranked;
    for (std::int32_t c = 0; c < n; ++c) {
      const std::string& name = class_names[static_cast<std::size_t>(c)];
      ranked.emplace_back(
          derive_seed(spec.seed, kClassSplitPurpose, hash_bytes(name.data(), name.size())), c);
    }
    std::sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return class_names[static_cast<std::size_t>(a.second)] <
             class_names[static_cast<std::size_t>(b.second)];
    });
    for (std::int32_t r = 0; r < n; ++r)
      (r < n_new                  ? split.new_classes
       : r < n_new + n_validation ? split.validation
                                  : split.train)
          .push_back(ranked[static_cast<std::size_t>(r)].second);
  }
  for (auto* list : {&split.train, &split.validation, &split.new_classes, &split.unassigned})
    sort_by_name(*list, class_names);
  return split;
}

}  // namespace ml::tasks
