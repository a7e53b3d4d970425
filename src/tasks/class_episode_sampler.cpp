// Class episodes over a text dataset: see class_episode_sampler.hpp.
#include "tasks/class_episode_sampler.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <utility>

#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"

namespace ml::tasks {

namespace {
constexpr std::uint64_t kNWayPurpose = 0x6e776179657069ULL;     // "nwayepi"
constexpr std::uint64_t kManyWayPurpose = 0x6d616e79776179ULL;  // "manyway"

// Takes `count` random elements out of `pool` (the order of the rest is not kept).
std::vector<std::size_t> take(std::vector<std::size_t>& pool, std::size_t count, Rng& rng) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < count && !pool.empty(); ++i) {
    const std::size_t j = uniform_index(rng, pool.size());
    out.push_back(pool[j]);
    pool[j] = pool.back();
    pool.pop_back();
  }
  return out;
}

// Shuffles rows and their labels together.
void shuffle_rows(std::vector<std::size_t>& rows, std::vector<std::int32_t>& labels, Rng& rng) {
  for (std::size_t i = rows.size(); i > 1; --i) {
    const std::size_t j = uniform_index(rng, i);
    std::swap(rows[i - 1], rows[j]);
    std::swap(labels[i - 1], labels[j]);
  }
}
}  // namespace

ClassEpisodeSampler::ClassEpisodeSampler(const data::TextDataset& data,
                                         std::vector<std::int32_t> classes, std::string split_name,
                                         ClassEpisodeShape shape, std::uint64_t seed)
    : data_(&data),
      classes_(std::move(classes)),
      split_name_(std::move(split_name)),
      shape_(shape),
      seed_(seed) {
  if (shape_.shots < 1)
    throw DataError("episodes need at least 1 support example per class, not " +
                    std::to_string(shape_.shots));
  if (shape_.queries < 1 && shape_.queries != kQueryRest)
    throw DataError("episodes need at least 1 query example per class, not " +
                    std::to_string(shape_.queries));
  if (shape_.ways < 2)
    throw DataError("episodes need at least 2 classes (ways), not " + std::to_string(shape_.ways));
  const auto n_classes = static_cast<std::int32_t>(data.class_names.size());
  std::vector<bool> in_split(data.class_names.size(), false);
  for (const std::int32_t c : classes_) {
    if (c < 0 || c >= n_classes)
      throw DataError("class id " + std::to_string(c) + " is not one of the dataset's " +
                      std::to_string(n_classes));
    in_split[static_cast<std::size_t>(c)] = true;
  }

  // Which classes each group holds: a group is pure for a class when it holds no other.
  const std::vector<bool> group_mixed = data::mixed_groups(data);
  groups_.resize(data.class_names.size());
  // Where each (class, group) pair sits in its class's lists.
  std::unordered_map<std::uint64_t, std::size_t> slot;
  std::vector<std::int64_t> rows_of_class(data.class_names.size(), 0);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto c = static_cast<std::size_t>(data.label[i]);
    ++rows_of_class[c];
    if (!in_split[c]) continue;
    ClassGroups& g = groups_[c];
    const std::int32_t group = data.group[i];
    const auto [it, added] = slot.try_emplace(
        (static_cast<std::uint64_t>(c) << 32) | static_cast<std::uint32_t>(group), g.group.size());
    if (added) {
      g.group.push_back(group);
      g.rows.emplace_back();
      g.pure.push_back(!group_mixed[static_cast<std::size_t>(group)]);
    }
    g.rows[it->second].push_back(i);
  }

  const int need = shape_.shots + (shape_.queries == kQueryRest ? 1 : shape_.queries);
  for (const std::int32_t c : classes_) {
    const ClassGroups& g = groups_[static_cast<std::size_t>(c)];
    const auto usable = static_cast<std::int64_t>(std::count(g.pure.begin(), g.pure.end(), true));
    if (usable >= need)
      eligible_.push_back(c);
    else
      short_.push_back({c, data.class_names[static_cast<std::size_t>(c)],
                        rows_of_class[static_cast<std::size_t>(c)], usable});
  }
}

std::string ClassEpisodeSampler::check() const {
  if (static_cast<int>(eligible_.size()) >= shape_.ways) return "";
  const int need = shape_.shots + (shape_.queries == kQueryRest ? 1 : shape_.queries);
  std::string message = "the " + split_name_ + " classes give " + std::to_string(eligible_.size()) +
                        " with at least " + std::to_string(need) + " distinct texts (support " +
                        std::to_string(shape_.shots) + " + query), need " +
                        std::to_string(shape_.ways) + " for " + std::to_string(shape_.ways) +
                        "-way episodes";
  if (!short_.empty()) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < short_.size() && i < 5; ++i)
      names.push_back("'" + short_[i].name + "' (" + std::to_string(short_[i].groups) + ")");
    message += "; short: " + join(names, ", ") +
               (short_.size() > 5 ? " and " + std::to_string(short_.size() - 5) + " more" : "");
  }
  return message;
}

ClassEpisode ClassEpisodeSampler::sample(std::uint64_t episode_index) const {
  if (shape_.queries == kQueryRest)
    throw DataError(
        "N-way episodes need a number of queries per class; 'the rest' is for the "
        "many-way task");
  if (std::string why = check(); !why.empty()) throw DataError(why);
  return draw(eligible_, false, kNWayPurpose, episode_index, true);
}

ClassEpisode ClassEpisodeSampler::many_way(std::uint64_t episode_index) const {
  if (eligible_.size() < 2)
    throw DataError("the many-way task over the " + split_name_ + " classes needs 2 classes with " +
                    "enough distinct texts, and has " + std::to_string(eligible_.size()));
  return draw(eligible_, shape_.queries == kQueryRest, kManyWayPurpose, episode_index, false);
}

ClassEpisode ClassEpisodeSampler::draw(std::vector<std::int32_t> classes, bool all_queries,
                                       std::uint64_t purpose, std::uint64_t episode_index,
                                       bool shuffle_classes) const {
  Rng rng(derive_seed(seed_, purpose, hash_bytes(split_name_.data(), split_name_.size()),
                      episode_index));
  if (shuffle_classes) {
    shuffle(classes, rng);
    classes.resize(static_cast<std::size_t>(shape_.ways));
  }
  ClassEpisode e;
  const auto pick_row = [&](const ClassGroups& g, std::size_t i) {
    const auto& rows = g.rows[i];
    return rows[uniform_index(rng, rows.size())];
  };
  // Supports first, so that the queries can avoid every group a support took.
  std::vector<std::vector<std::size_t>> rest(classes.size());
  std::vector<std::int32_t> support_groups;
  for (std::size_t label = 0; label < classes.size(); ++label) {
    const ClassGroups& g = groups_[static_cast<std::size_t>(classes[label])];
    std::vector<std::size_t> pool(g.group.size());
    for (std::size_t i = 0; i < pool.size(); ++i) pool[i] = i;
    for (const std::size_t i : take(pool, static_cast<std::size_t>(shape_.shots), rng)) {
      e.support.push_back(pick_row(g, i));
      e.support_labels.push_back(static_cast<std::int32_t>(label));
      support_groups.push_back(g.group[i]);
    }
    rest[label] = std::move(pool);
  }
  std::sort(support_groups.begin(), support_groups.end());
  for (std::size_t label = 0; label < classes.size(); ++label) {
    const ClassGroups& g = groups_[static_cast<std::size_t>(classes[label])];
    std::vector<std::size_t>& pool = rest[label];
    // The pool's order came from take(): sort it back so the draw depends only on the rng.
    std::sort(pool.begin(), pool.end());
    pool.erase(std::remove_if(pool.begin(), pool.end(),
                              [&](std::size_t i) {
                                return std::binary_search(support_groups.begin(),
                                                          support_groups.end(), g.group[i]);
                              }),
               pool.end());
    const std::vector<std::size_t> chosen =
        all_queries ? pool : take(pool, static_cast<std::size_t>(shape_.queries), rng);
    for (const std::size_t i : chosen) {
      e.query.push_back(pick_row(g, i));
      e.query_labels.push_back(static_cast<std::int32_t>(label));
    }
  }
  shuffle_rows(e.support, e.support_labels, rng);
  shuffle_rows(e.query, e.query_labels, rng);
  e.classes = std::move(classes);
  return e;
}

std::vector<SplitSummary> summarize_split(const data::TextDataset& data, const ClassSplit& split,
                                          const ClassEpisodeShape& shape) {
  std::vector<SplitSummary> out;
  for (const ClassSplitPart part :
       {ClassSplitPart::kTrain, ClassSplitPart::kValidation, ClassSplitPart::kNew}) {
    const std::vector<std::int32_t>& classes = split.classes(part);
    SplitSummary s;
    s.part = part;
    s.classes = static_cast<std::int64_t>(classes.size());
    std::vector<bool> in_part(data.class_names.size(), false);
    for (const std::int32_t c : classes) in_part[static_cast<std::size_t>(c)] = true;
    std::set<std::int32_t> groups;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (in_part[static_cast<std::size_t>(data.label[i])]) {
        ++s.rows;
        groups.insert(data.group[i]);
      }
    s.groups = static_cast<std::int64_t>(groups.size());
    const ClassEpisodeSampler sampler(data, classes, split_part_name(part), shape, 0);
    s.eligible = static_cast<std::int64_t>(sampler.eligible().size());
    s.short_classes = sampler.short_classes();
    s.problem = sampler.check();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ml::tasks
