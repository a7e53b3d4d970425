// N-way K-shot episodes over the classes of one split of a labelled text dataset (few-shot
// classification over held-out classes; Vinyals et al. 2016, Snell et al. 2017), and the
// many-way evaluation task that puts every class of a split in one episode.
// Sampling is at the level of duplicate groups (data/text_dataset.hpp): K-shot means K distinct
// groups per class, one random row of each, and no group of the support gives a row to the
// query, whatever class that row has, so a query text never repeats a support text (or a
// variant of the same product) and accuracy is not inflated by memorised duplicates. A group
// whose rows carry several classes never counts towards a class's K + Q, which guarantees the
// query its Q groups however the other classes' supports fall.
// Each episode is a pure function of (seed, split name, episode index), like
// tasks/episode_sampler.hpp, and its rows come in a seeded random order, never the file's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text_dataset.hpp"
#include "tasks/class_split.hpp"

namespace ml::tasks {

// The many-way task's query: every group of a class that its support did not take.
inline constexpr int kQueryRest = -1;

struct ClassEpisodeShape {
  int ways = 5;      // N; ignored by the many-way task, which takes every eligible class
  int shots = 1;     // K support groups per class
  int queries = 15;  // Q query groups per class, or kQueryRest (many-way only)
};

struct ClassEpisode {
  // Episode label i is dataset class classes[i] (an index into TextDataset::class_names).
  std::vector<std::int32_t> classes;
  std::vector<std::size_t> support, query;                 // row indices into the dataset
  std::vector<std::int32_t> support_labels, query_labels;  // 0 .. classes.size() - 1
};

// A class of the split that cannot give K + Q groups, as reported (never silently dropped).
struct ShortClass {
  std::int32_t id = 0;
  std::string name;
  std::int64_t rows = 0;
  std::int64_t groups = 0;  // usable groups: those whose rows all carry this class
};

class ClassEpisodeSampler {
 public:
  // `classes`: the split's class ids (ClassSplit::classes). The dataset must outlive the
  // sampler. Throws DataError for shots < 1, queries < 1 (other than kQueryRest), ways < 2,
  // or a class id outside the dataset.
  ClassEpisodeSampler(const data::TextDataset& data, std::vector<std::int32_t> classes,
                      std::string split_name, ClassEpisodeShape shape, std::uint64_t seed);

  // The split's classes with at least shots + queries usable groups (shots + 1 for
  // kQueryRest), sorted as given; and those without, with their counts.
  const std::vector<std::int32_t>& eligible() const { return eligible_; }
  const std::vector<ShortClass>& short_classes() const { return short_; }
  // Why no N-way episode can be drawn ("" when one can): fewer eligible classes than ways,
  // naming the short classes and their group counts.
  std::string check() const;

  // The N-way K-shot episode `episode_index`: N eligible classes, K + Q groups each. Throws
  // DataError when check() fails, or when the shape's queries is kQueryRest.
  ClassEpisode sample(std::uint64_t episode_index) const;
  // Every eligible class at once, labels in the order of eligible(): K support groups each and
  // Q query groups (or, with kQueryRest, every other group). Throws DataError when fewer than
  // two classes are eligible.
  ClassEpisode many_way(std::uint64_t episode_index = 0) const;

  const ClassEpisodeShape& shape() const { return shape_; }
  const std::string& split_name() const { return split_name_; }

 private:
  // The groups that hold rows of one class, and those rows.
  struct ClassGroups {
    std::vector<std::int32_t> group;
    std::vector<std::vector<std::size_t>> rows;  // rows[i]: this class's rows of group[i]
    std::vector<bool> pure;                      // group[i] holds no other class
  };
  ClassEpisode draw(std::vector<std::int32_t> classes, bool all_queries, std::uint64_t purpose,
                    std::uint64_t episode_index, bool shuffle_classes) const;

  const data::TextDataset* data_;
  std::vector<std::int32_t> classes_;
  std::string split_name_;
  ClassEpisodeShape shape_;
  std::uint64_t seed_;
  std::vector<ClassGroups> groups_;  // by class id (empty for classes outside the split)
  std::vector<std::int32_t> eligible_;
  std::vector<ShortClass> short_;
};

// What inspect shows per split: its classes, their rows and duplicate groups, and which classes
// cannot give `shape`'s K + Q distinct texts.
struct SplitSummary {
  ClassSplitPart part = ClassSplitPart::kTrain;
  std::int64_t classes = 0, rows = 0, groups = 0;  // groups: distinct groups among the rows
  std::int64_t eligible = 0;
  std::vector<ShortClass> short_classes;
  std::string problem;  // ClassEpisodeSampler::check() for N-way episodes of this split
};

// One summary per split part (train, validation, new), in that order. Never throws for a
// split with too few classes: that is what `problem` reports.
std::vector<SplitSummary> summarize_split(const data::TextDataset& data, const ClassSplit& split,
                                          const ClassEpisodeShape& shape);

}  // namespace ml::tasks
