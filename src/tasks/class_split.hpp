// Held-out classes for few-shot classification: every class of a dataset goes to one of three
// splits, train (meta-training episodes), validation (model selection) and new (the final
// evaluation on classes never seen in training), as in the few-shot protocols of Vinyals et al.
// 2016 (Matching Networks) and Snell et al. 2017 (ProtoNets), where classes, not examples, are
// split. The split is either seeded fractions or explicit lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ml::tasks {

enum class ClassSplitPart { kTrain, kValidation, kNew };

// "train", "validation", "new".
const char* split_part_name(ClassSplitPart part);

struct ClassSplitSpec {
  // Seeded fractions of the classes (rounded to whole classes). Used when all three lists are
  // empty; the rest of the classes are train. Defaults as split.* has them for tasks.
  double validation_fraction = 0.1;
  double new_fraction = 0.2;
  std::uint64_t seed = 0;
  // Explicit lists of class names, used when any is non-empty. Classes in no list go to train
  // when the train list is empty, else are left out (ClassSplit::unassigned).
  std::vector<std::string> train, validation, new_classes;

  bool explicit_lists() const {
    return !train.empty() || !validation.empty() || !new_classes.empty();
  }
};

struct ClassSplit {
  // Class ids (indices into the class names given to split_classes), each list sorted by
  // class name so that it does not depend on the order the data listed them in.
  std::vector<std::int32_t> train, validation, new_classes, unassigned;
  // Classes left out before the split because too few of their texts are distinct
  // (pipeline::split_text_classes: data.text.min_class_groups); empty from split_classes.
  std::vector<std::int32_t> dropped;

  const std::vector<std::int32_t>& classes(ClassSplitPart part) const;
};

// Splits `class_names` (distinct) as `spec` says.
// Fractions: each class gets the rank of derive_seed(seed, purpose, hash of its name) among the
// classes (util/rng.hpp), so where a class goes depends on the seed, its name and the set of
// names, never on their order; the round(n * new_fraction) first ranks are new, the next
// round(n * validation_fraction) validation. Throws ConfigError for a fraction outside [0, 1),
// fractions that leave no train class, a list naming a class the data does not have (with the
// closest name), and a class named in two lists.
ClassSplit split_classes(const std::vector<std::string>& class_names, const ClassSplitSpec& spec);

}  // namespace ml::tasks
