// Evaluation metrics on plain vectors; conventions are documented once, in metrics.hpp.
#include "metrics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

#include "util/errors.hpp"

namespace ml::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(const char* function, const char* a_name, std::size_t a, const char* b_name,
                 std::size_t b) {
  if (a != b) {
    throw DataError(std::string(function) + ": " + a_name + " has " + std::to_string(a) +
                    " values but " + b_name + " has " + std::to_string(b));
  }
}

void check_binary_labels(const char* function, const std::vector<float>& labels) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      throw DataError(std::string(function) + ": label " + std::to_string(i) + " is " +
                      std::to_string(labels[i]) + ", expected 0 or 1");
    }
  }
}

// std::sort needs a strict weak order, which NaN breaks (undefined behaviour, not just a wrong
// number), so rank-based metrics refuse NaN up front.
void check_no_nan_scores(const char* function, const std::vector<float>& scores) {
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) {
      throw NumericError(std::string(function) + ": score " + std::to_string(i) +
                         " is NaN (did the model diverge?)");
    }
  }
}

void check_k(const char* function, std::size_t k) {
  if (k == 0) throw std::invalid_argument(std::string(function) + ": k must be >= 1");
}

// One tie pool as one list sees it.
struct Pool {
  std::size_t size = 0, drawn = 0;
  float gain = 0;
  // Exactly some of the items are relevant: the draw matters.
  bool random() const { return drawn > 0 && drawn < size; }
};

// One list's items (indices into the caller's vectors) with its pools renumbered from 0.
struct List {
  std::vector<std::size_t> items;
  std::vector<std::int32_t> pool;  // per item of `items`: local pool or kNoPool
  std::vector<Pool> pools;
};

// Checks `relevance` against `n` items and returns each pool's size, drawn count and gain.
// Negative gains would let NDCG leave [0, 1], and NaN would poison the ideal DCG; unequal gains
// in a pool would make the ideal DCG depend on the draw.
std::vector<Pool> checked_pools(const char* function, const Relevance& relevance, std::size_t n) {
  check_sizes(function, "scores", n, "relevance", relevance.gain.size());
  for (std::size_t i = 0; i < n; ++i) {
    const float g = relevance.gain[i];
    if (!std::isfinite(g) || g < 0.0f) {
      throw DataError(std::string(function) + ": relevance " + std::to_string(i) + " is " +
                      std::to_string(g) + ", expected a finite value >= 0");
    }
  }
  std::vector<Pool> pools(relevance.drawn.size());
  for (std::size_t p = 0; p < pools.size(); ++p) pools[p].drawn = relevance.drawn[p];
  if (relevance.pool.empty()) {
    if (!pools.empty() &&
        std::any_of(pools.begin(), pools.end(), [](const Pool& p) { return p.drawn > 0; }))
      throw DataError(std::string(function) + ": relevance draws from a tie pool without items");
    return pools;
  }
  check_sizes(function, "scores", n, "relevance pools", relevance.pool.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t p = relevance.pool[i];
    if (p == Relevance::kNoPool) continue;
    if (p < 0 || static_cast<std::size_t>(p) >= pools.size()) {
      throw DataError(std::string(function) + ": item " + std::to_string(i) + " is in tie pool " +
                      std::to_string(p) + ", but there are " + std::to_string(pools.size()));
    }
    Pool& pool = pools[static_cast<std::size_t>(p)];
    const float g = relevance.gain[i];
    if (g <= 0.0f || (pool.size > 0 && g != pool.gain)) {
      throw DataError(std::string(function) + ": item " + std::to_string(i) + " of tie pool " +
                      std::to_string(p) + " has gain " + std::to_string(g) +
                      ", expected one gain > 0 for the whole pool");
    }
    pool.gain = g;
    ++pool.size;
  }
  for (std::size_t p = 0; p < pools.size(); ++p) {
    if (pools[p].drawn > pools[p].size) {
      throw DataError(std::string(function) + ": tie pool " + std::to_string(p) + " draws " +
                      std::to_string(pools[p].drawn) + " relevant items from " +
                      std::to_string(pools[p].size));
    }
  }
  return pools;
}

// Probability P(d) for d = 0..min(size, drawn) that `size` of the `left` pool items not yet
// passed hold d of the `drawn` relevant ones (hypergeometric), by the ratio of consecutive
// terms from the first possible d, normalised: no factorial overflows.
std::vector<double> hypergeometric(std::size_t left, std::size_t drawn, std::size_t size) {
  std::vector<double> p(std::min(size, drawn) + 1, 0.0);
  const std::size_t others = left - drawn;  // pool items left that are not relevant
  const std::size_t low = size > others ? size - others : 0;
  double term = 1.0, sum = 0.0;
  for (std::size_t d = low; d < p.size(); ++d) {
    p[d] = term;
    sum += term;
    // P(d + 1) / P(d) = (drawn - d)(size - d) / ((d + 1)(others - size + d + 1))
    term *= static_cast<double>(drawn - d) * static_cast<double>(size - d) /
            (static_cast<double>(d + 1) * static_cast<double>(others + d + 1 - size));
  }
  for (double& x : p) x /= sum;
  return p;
}

// E[1 / rank of the first relevant item, within the top k] for a tie block at 0-based position
// `begin` of `n` items holding r > 0 relevant ones: offset j has probability C(n-1-j, r-1) /
// C(n, r), i.e. r / n for j = 0 and a ratio (n - j - r) / (n - j - 1) from each j to the next.
double block_reciprocal_rank(std::size_t begin, std::size_t n, std::size_t r, std::size_t k) {
  double sum = 0.0, p = static_cast<double>(r) / static_cast<double>(n);
  for (std::size_t j = 0; j + r <= n && begin + j < k; ++j) {
    sum += p / static_cast<double>(begin + j + 1);
    if (j + 1 + r <= n) p *= static_cast<double>(n - j - r) / static_cast<double>(n - j - 1);
  }
  return sum;
}

double discount(std::size_t position) {
  return 1.0 / std::log2(static_cast<double>(position) + 2.0);
}

struct ListResult {
  double precision = 0, ndcg = 0, mrr = 0;
  bool any_relevant = false;
  bool precision_fixed = false, ndcg_fixed = false, mrr_fixed = false;
};

// Every expectation of one list at once (see metrics.hpp for the formulas and their source).
ListResult expected_metrics(const std::vector<float>& scores, const std::vector<float>& gains,
                            const List& list, std::size_t k) {
  const std::size_t n = list.items.size();
  ListResult out;
  // P(item relevant) as the fraction num / den, so that equal probabilities compare exactly.
  std::vector<std::size_t> num(n), den(n, 1);
  std::vector<double> gain(n);
  std::vector<float> relevant_gains;
  for (std::size_t i = 0; i < n; ++i) {
    gain[i] = gains[list.items[i]];
    const std::int32_t p = list.pool.empty() ? Relevance::kNoPool : list.pool[i];
    if (p == Relevance::kNoPool) {
      num[i] = gain[i] > 0.0 ? 1 : 0;
      if (num[i] == 1) relevant_gains.push_back(static_cast<float>(gain[i]));
    } else {
      num[i] = list.pools[static_cast<std::size_t>(p)].drawn;
      den[i] = list.pools[static_cast<std::size_t>(p)].size;
    }
  }
  for (const Pool& pool : list.pools)
    relevant_gains.insert(relevant_gains.end(), pool.drawn, pool.gain);
  out.any_relevant = !relevant_gains.empty();
  if (!out.any_relevant) return out;

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return scores[list.items[a]] > scores[list.items[b]];
  });

  // MRR state: the probability that no block so far held a relevant item, and how many items of
  // each pool are still ahead (given that, all of the pool's relevant ones are among them).
  double reach = 1.0;
  std::vector<std::size_t> left(list.pools.size());
  for (std::size_t p = 0; p < left.size(); ++p) left[p] = list.pools[p].size;
  double hits = 0.0, dcg = 0.0;
  for (std::size_t begin = 0; begin < n && begin < k;) {
    std::size_t end = begin + 1;
    const float score = scores[list.items[order[begin]]];
    while (end < n && scores[list.items[order[end]]] == score) ++end;
    const std::size_t size = end - begin, top = std::min(end, k);
    double probability_sum = 0.0, expected_gain_sum = 0.0, mean_discount = 0.0;
    std::size_t certain = 0;
    std::vector<std::size_t> in_pool(list.pools.size(), 0);
    for (std::size_t at = begin; at < end; ++at) {
      const std::size_t i = order[at];
      const double p = static_cast<double>(num[i]) / static_cast<double>(den[i]);
      probability_sum += p;
      expected_gain_sum += gain[i] * p;
      const std::int32_t pool = list.pool.empty() ? Relevance::kNoPool : list.pool[i];
      if (pool != Relevance::kNoPool)
        ++in_pool[static_cast<std::size_t>(pool)];
      else
        certain += num[i];
    }
    for (std::size_t at = begin; at < top; ++at) mean_discount += discount(at);
    hits += probability_sum * static_cast<double>(top - begin) / static_cast<double>(size);
    dcg += expected_gain_sum * mean_discount / static_cast<double>(size);

    if (reach > 0.0) {
      // The distribution of the block's relevant pool items: each pool's count is
      // hypergeometric, the pools' draws independent, so the counts convolve.
      std::vector<double> drawn_here{1.0};
      for (std::size_t p = 0; p < in_pool.size(); ++p) {
        if (in_pool[p] == 0 || list.pools[p].drawn == 0) {
          left[p] -= in_pool[p];
          continue;
        }
        const auto h = hypergeometric(left[p], list.pools[p].drawn, in_pool[p]);
        std::vector<double> sum(drawn_here.size() + h.size() - 1, 0.0);
        for (std::size_t a = 0; a < drawn_here.size(); ++a)
          for (std::size_t b = 0; b < h.size(); ++b) sum[a + b] += drawn_here[a] * h[b];
        drawn_here = std::move(sum);
        left[p] -= in_pool[p];
      }
      for (std::size_t d = 0; d < drawn_here.size(); ++d)
        if (certain + d > 0)
          out.mrr += reach * drawn_here[d] * block_reciprocal_rank(begin, size, certain + d, k);
      reach = certain > 0 ? 0.0 : reach * drawn_here[0];
    }
    begin = end;
  }
  out.precision = hits / static_cast<double>(k);
  std::sort(relevant_gains.begin(), relevant_gains.end(), std::greater<float>());
  double ideal = 0.0;
  for (std::size_t at = 0; at < relevant_gains.size() && at < k; ++at)
    ideal += static_cast<double>(relevant_gains[at]) * discount(at);
  out.ndcg = dcg / ideal;

  // Fixed by the composition (conditions and why in metrics.hpp). num/den < 2^26 for any list
  // this library is asked to rank, so the products below are exact.
  bool equal_probability = true, equal_expected_gain = true;
  for (std::size_t i = 1; i < n; ++i) {
    equal_probability = equal_probability && num[i] * den[0] == num[0] * den[i];
    equal_expected_gain = equal_expected_gain && gain[i] * static_cast<double>(num[i] * den[0]) ==
                                                     gain[0] * static_cast<double>(num[0] * den[i]);
  }
  const auto random_pools =
      std::count_if(list.pools.begin(), list.pools.end(), [](const Pool& p) { return p.random(); });
  out.precision_fixed = n <= k || equal_probability;
  out.ndcg_fixed = n <= 1 || equal_expected_gain;
  out.mrr_fixed = n <= 1 || (equal_probability && (k == 1 || n == 2 || random_pools <= 1));
  return out;
}

// One list of the single-list functions: every item, pools as given.
ListResult single_list(const char* function, const std::vector<float>& scores,
                       const Relevance& relevance, std::size_t k) {
  check_k(function, k);
  check_no_nan_scores(function, scores);
  List list;
  list.pools = checked_pools(function, relevance, scores.size());
  list.items.resize(scores.size());
  std::iota(list.items.begin(), list.items.end(), std::size_t{0});
  list.pool = relevance.pool;
  return expected_metrics(scores, relevance.gain, list, k);
}

}  // namespace

double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  check_sizes("roc_auc", "scores", scores.size(), "labels", labels.size());
  check_binary_labels("roc_auc", labels);
  check_no_nan_scores("roc_auc", scores);

  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });

  // Each tie block gets the average of the 1-based ranks it spans, which is exactly what gives a
  // tied positive/negative pair half credit in U.
  double positive_rank_sum = 0.0;
  double positives = 0.0;
  for (std::size_t begin = 0; begin < order.size();) {
    std::size_t end = begin + 1;
    while (end < order.size() && scores[order[end]] == scores[order[begin]]) ++end;
    const double average_rank = (static_cast<double>(begin + 1) + static_cast<double>(end)) / 2.0;
    for (std::size_t i = begin; i < end; ++i) {
      if (labels[order[i]] == 1.0f) {
        positive_rank_sum += average_rank;
        positives += 1.0;
      }
    }
    begin = end;
  }
  const double negatives = static_cast<double>(scores.size()) - positives;
  if (positives == 0.0 || negatives == 0.0) return kNaN;
  const double u = positive_rank_sum - positives * (positives + 1.0) / 2.0;
  return u / (positives * negatives);
}

double log_loss_from_logits(const std::vector<float>& logits, const std::vector<float>& labels) {
  check_sizes("log_loss_from_logits", "logits", logits.size(), "labels", labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (!(labels[i] >= 0.0f && labels[i] <= 1.0f)) {
      throw DataError("log_loss_from_logits: label " + std::to_string(i) + " is " +
                      std::to_string(labels[i]) + ", expected a value in [0, 1]");
    }
  }
  if (logits.empty()) return kNaN;
  double sum = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double x = logits[i];
    const double y = labels[i];
    // -[y log s(x) + (1-y) log(1-s(x))] = softplus(x) - y x, with softplus written so exp()
    // never overflows.
    const double softplus = std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    sum += softplus - y * x;
  }
  return sum / static_cast<double>(logits.size());
}

double binary_accuracy_from_logits(const std::vector<float>& logits,
                                   const std::vector<float>& labels) {
  check_sizes("binary_accuracy_from_logits", "logits", logits.size(), "labels", labels.size());
  check_binary_labels("binary_accuracy_from_logits", labels);
  if (logits.empty()) return kNaN;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) continue;
    const bool predicted_positive = logits[i] > 0.0f;
    correct += predicted_positive == (labels[i] == 1.0f) ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(logits.size());
}

double mae(const std::vector<float>& pred, const std::vector<float>& target) {
  check_sizes("mae", "pred", pred.size(), "target", target.size());
  if (pred.empty()) return kNaN;
  double sum = 0.0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    sum += std::abs(static_cast<double>(pred[i]) - static_cast<double>(target[i]));
  }
  return sum / static_cast<double>(pred.size());
}

double rmse(const std::vector<float>& pred, const std::vector<float>& target) {
  check_sizes("rmse", "pred", pred.size(), "target", target.size());
  if (pred.empty()) return kNaN;
  double sum = 0.0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(pred.size()));
}

double multiclass_accuracy(const std::vector<float>& logits_row_major, std::size_t classes,
                           const std::vector<int>& labels) {
  if (classes == 0) throw std::invalid_argument("multiclass_accuracy: classes must be >= 1");
  if (logits_row_major.size() != labels.size() * classes) {
    throw DataError("multiclass_accuracy: " + std::to_string(logits_row_major.size()) +
                    " logits are not " + std::to_string(labels.size()) + " labels x " +
                    std::to_string(classes) + " classes");
  }
  if (labels.empty()) return kNaN;
  std::size_t correct = 0;
  for (std::size_t row = 0; row < labels.size(); ++row) {
    const int label = labels[row];
    if (label < 0 || static_cast<std::size_t>(label) >= classes) {
      throw DataError("multiclass_accuracy: label " + std::to_string(row) + " is " +
                      std::to_string(label) + ", expected 0.." + std::to_string(classes - 1));
    }
    const float* logits = logits_row_major.data() + row * classes;
    bool has_nan = false;
    std::size_t best = 0;
    for (std::size_t c = 0; c < classes; ++c) {
      if (std::isnan(logits[c])) has_nan = true;
      if (logits[c] > logits[best]) best = c;  // strict: a tie keeps the lower index
    }
    if (!has_nan && best == static_cast<std::size_t>(label)) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

double precision_at_k(const std::vector<float>& scores, const Relevance& relevance, std::size_t k) {
  return single_list("precision_at_k", scores, relevance, k).precision;
}

double ndcg_at_k(const std::vector<float>& scores, const Relevance& relevance, std::size_t k) {
  return single_list("ndcg_at_k", scores, relevance, k).ndcg;
}

double reciprocal_rank(const std::vector<float>& scores, const Relevance& relevance,
                       std::size_t k) {
  return single_list("reciprocal_rank", scores, relevance, k).mrr;
}

RankingMetrics ranking_metrics_by_group(const std::vector<float>& scores,
                                        const Relevance& relevance,
                                        const std::vector<std::int64_t>& group_ids, std::size_t k) {
  const char* fn = "ranking_metrics_by_group";
  check_sizes(fn, "scores", scores.size(), "group_ids", group_ids.size());
  check_k(fn, k);
  check_no_nan_scores(fn, scores);
  const std::vector<Pool> pools = checked_pools(fn, relevance, scores.size());

  std::map<std::int64_t, List> lists;
  std::vector<std::int64_t> group_of_pool(pools.size());
  std::vector<std::int32_t> local_pool(pools.size(), Relevance::kNoPool);
  for (std::size_t i = 0; i < group_ids.size(); ++i) {
    List& list = lists[group_ids[i]];
    list.items.push_back(i);
    const std::int32_t p = relevance.pool.empty() ? Relevance::kNoPool : relevance.pool[i];
    if (p == Relevance::kNoPool) {
      list.pool.push_back(Relevance::kNoPool);
      continue;
    }
    const auto global = static_cast<std::size_t>(p);
    if (local_pool[global] == Relevance::kNoPool) {
      local_pool[global] = static_cast<std::int32_t>(list.pools.size());
      list.pools.push_back(pools[global]);
      group_of_pool[global] = group_ids[i];
    } else if (group_of_pool[global] != group_ids[i]) {
      throw DataError(std::string(fn) + ": tie pool " + std::to_string(p) + " spans groups " +
                      std::to_string(group_of_pool[global]) + " and " +
                      std::to_string(group_ids[i]));
    }
    list.pool.push_back(local_pool[global]);
  }

  RankingMetrics sum;
  sum.precision_fixed = sum.ndcg_fixed = sum.mrr_fixed = true;
  for (const auto& [group, list] : lists) {
    (void)group;
    const ListResult r = expected_metrics(scores, relevance.gain, list, k);
    if (!r.any_relevant) continue;
    sum.precision += r.precision;
    sum.ndcg += r.ndcg;
    sum.mrr += r.mrr;
    sum.precision_fixed = sum.precision_fixed && r.precision_fixed;
    sum.ndcg_fixed = sum.ndcg_fixed && r.ndcg_fixed;
    sum.mrr_fixed = sum.mrr_fixed && r.mrr_fixed;
    ++sum.groups;
  }
  if (sum.groups == 0) return RankingMetrics{kNaN, kNaN, kNaN, 0, false, false, false};
  const double n = static_cast<double>(sum.groups);
  sum.precision /= n;
  sum.ndcg /= n;
  sum.mrr /= n;
  return sum;
}

Relevance top_k_label_relevance(const std::vector<float>& labels,
                                const std::vector<std::int64_t>& group_ids, std::size_t k) {
  const char* fn = "top_k_label_relevance";
  check_sizes(fn, "labels", labels.size(), "group_ids", group_ids.size());
  check_k(fn, k);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (std::isnan(labels[i]))
      throw DataError(std::string(fn) + ": label " + std::to_string(i) + " is NaN");
  }
  std::map<std::int64_t, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < group_ids.size(); ++i) members[group_ids[i]].push_back(i);
  Relevance relevance;
  relevance.gain.assign(labels.size(), 0.0f);
  relevance.pool.assign(labels.size(), Relevance::kNoPool);
  for (auto& [group, indices] : members) {
    (void)group;
    std::sort(indices.begin(), indices.end(),
              [&](std::size_t a, std::size_t b) { return labels[a] > labels[b]; });
    const std::size_t take = std::min(k, indices.size());
    for (std::size_t r = 0; r < take; ++r) relevance.gain[indices[r]] = 1.0f;
    if (take == indices.size()) continue;
    // The items tied with the last one taken: above the cut `inside` of them, below the rest.
    const float cut = labels[indices[take - 1]];
    std::size_t first = take - 1, last = take;
    while (first > 0 && labels[indices[first - 1]] == cut) --first;
    while (last < indices.size() && labels[indices[last]] == cut) ++last;
    if (last == take) continue;  // no tie across the cut: the top k are certain
    const auto pool = static_cast<std::int32_t>(relevance.drawn.size());
    relevance.drawn.push_back(take - first);
    for (std::size_t r = first; r < last; ++r) {
      relevance.gain[indices[r]] = 1.0f;
      relevance.pool[indices[r]] = pool;
    }
  }
  return relevance;
}

}  // namespace ml::metrics
