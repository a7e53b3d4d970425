// Episode sampling: see episode_sampler.hpp.
#include "tasks/episode_sampler.hpp"

#include <algorithm>
#include <cmath>

#include "util/errors.hpp"
#include "util/rng.hpp"

namespace ml::tasks {

namespace {
constexpr std::uint64_t kEpisodePurpose = 0x657069736f6465ULL;  // "episode"

std::uint64_t name_hash(const std::string& s) {
  return hash_bytes(s.data(), s.size());
}

// Takes `count` random elements out of `pool` (order of the rest is not kept).
std::vector<std::size_t> take(std::vector<std::size_t>& pool, std::size_t count, Rng& rng) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < count && !pool.empty(); ++i) {
    std::size_t j = uniform_index(rng, pool.size());
    out.push_back(pool[j]);
    pool[j] = pool.back();
    pool.pop_back();
  }
  return out;
}
}  // namespace

EpisodeShape episode_shape(const config::TaskConfig& task) {
  return {task.support, task.query, task.stratify, task.label.ways};
}

EpisodeSampler::EpisodeSampler(LabelKind kind, EpisodeShape shape, std::uint64_t seed)
    : kind_(kind), shape_(std::move(shape)), seed_(seed) {}

std::pair<int, int> EpisodeSampler::binary_support_split(std::int64_t positives,
                                                         std::int64_t negatives) const {
  const int k = shape_.support;
  switch (shape_.stratify) {
    case config::Stratify::kBalanced:
      return {k / 2, k - k / 2};
    case config::Stratify::kProportional: {
      double p = static_cast<double>(positives) / std::max<std::int64_t>(1, positives + negatives);
      int pos = static_cast<int>(std::lround(k * p));
      if (k >= 2) pos = std::clamp(pos, 1, k - 1);
      return {pos, k - pos};
    }
    case config::Stratify::kNone:
      break;
  }
  return {-1, -1};  // no composition
}

DropReason EpisodeSampler::diagnose(const Task& task) const {
  const auto n = static_cast<std::int64_t>(task.examples.size());
  const int k = shape_.support, q = shape_.query;
  const bool rest_is_support = k == config::kSupportAll;
  const int least = config::min_episode_examples(k, q);
  if (kind_ == LabelKind::kMulticlass) {
    if (static_cast<int>(task.eligible_classes.size()) < shape_.ways)
      return {DropCause::kTooFewClasses,
              std::to_string(task.eligible_classes.size()) +
                  " classes with >= " + std::to_string(least) +
                  " examples, need task.label.ways = " + std::to_string(shape_.ways)};
    return {};
  }
  if (n < least)
    return {DropCause::kTooFewExamples,
            std::to_string(n) + " examples, need " +
                (rest_is_support ? "query + 1 = " : "support + query = ") + std::to_string(least)};
  if (kind_ == LabelKind::kBinary && rest_is_support) {  // the query still needs both classes
    if (task.positives < 1 || task.negatives < 1)
      return {DropCause::kOneLabelClass, "only one label class"};
    return {};
  }
  if (kind_ == LabelKind::kBinary) {
    auto [kp, kn] = binary_support_split(task.positives, task.negatives);
    if (kp < 0) {  // unstratified: the query still needs both classes to be scored
      if (task.positives < 1 || task.negatives < 1)
        return {DropCause::kOneLabelClass, "only one label class"};
      return {};
    }
    if (task.positives <= kp)
      return {DropCause::kTooFewPositives, std::to_string(task.positives) +
                                               " positives, need more than the " +
                                               std::to_string(kp) + " a support set takes"};
    if (task.negatives <= kn)
      return {DropCause::kTooFewNegatives, std::to_string(task.negatives) +
                                               " negatives, need more than the " +
                                               std::to_string(kn) + " a support set takes"};
  }
  return {};
}

Episode EpisodeSampler::sample(const Task& task, std::uint64_t episode_index) const {
  if (std::string why = check(task); !why.empty())
    throw DataError("task '" + task.name + "' cannot give an episode: " + why);
  Rng rng(derive_seed(seed_, kEpisodePurpose, name_hash(task.name), episode_index));
  Episode e;
  e.task = &task;
  // With support "all" the query is drawn first and the support is what it leaves.
  const bool rest_is_support = shape_.support == config::kSupportAll;
  const auto k = static_cast<std::size_t>(std::max(shape_.support, 0));
  const auto q = static_cast<std::size_t>(shape_.query);

  if (kind_ == LabelKind::kMulticlass) {
    std::vector<std::int32_t> classes = task.eligible_classes;
    shuffle(classes, rng);
    classes.resize(static_cast<std::size_t>(shape_.ways));
    for (std::int32_t c : classes) {
      std::vector<std::size_t> pool;
      for (std::size_t i = 0; i < task.examples.size(); ++i)
        if (static_cast<std::int32_t>(task.examples[i].label) == c) pool.push_back(i);
      std::vector<std::size_t> s, qq;
      if (rest_is_support) {
        qq = take(pool, q, rng);
        s = pool;
      } else {
        s = take(pool, k, rng);
        qq = take(pool, q, rng);
      }
      e.support.insert(e.support.end(), s.begin(), s.end());
      e.query.insert(e.query.end(), qq.begin(), qq.end());
    }
    e.classes = std::move(classes);
  } else if (kind_ == LabelKind::kBinary) {
    std::vector<std::size_t> pos, neg;
    for (std::size_t i = 0; i < task.examples.size(); ++i)
      (task.examples[i].label > 0.5f ? pos : neg).push_back(i);
    auto [kp, kn] = binary_support_split(task.positives, task.negatives);
    if (rest_is_support) {
      // the support is taken after the query, below
    } else if (kp >= 0) {
      e.support = take(pos, static_cast<std::size_t>(kp), rng);
      auto sn = take(neg, static_cast<std::size_t>(kn), rng);
      e.support.insert(e.support.end(), sn.begin(), sn.end());
    } else {
      std::vector<std::size_t> all = pos;
      all.insert(all.end(), neg.begin(), neg.end());
      e.support = take(all, k, rng);
      pos.clear();
      neg.clear();
      for (std::size_t i : all) (task.examples[i].label > 0.5f ? pos : neg).push_back(i);
    }
    // One of each class first, so every query can be scored by AUC.
    if (q >= 2 && !pos.empty() && !neg.empty()) {
      e.query = take(pos, 1, rng);
      auto one = take(neg, 1, rng);
      e.query.push_back(one[0]);
    }
    std::vector<std::size_t> rest = pos;
    rest.insert(rest.end(), neg.begin(), neg.end());
    auto more = take(rest, q - e.query.size(), rng);
    e.query.insert(e.query.end(), more.begin(), more.end());
    if (rest_is_support) e.support = rest;
  } else {
    std::vector<std::size_t> all(task.examples.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (rest_is_support) {
      e.query = take(all, q, rng);
      e.support = all;
    } else {
      e.support = take(all, k, rng);
      e.query = take(all, q, rng);
    }
  }
  // Whatever order the draws above leave (classes in turn, one positive and one negative first),
  // the rows come in a random one.
  shuffle(e.support, rng);
  shuffle(e.query, rng);
  return e;
}

}  // namespace ml::tasks
