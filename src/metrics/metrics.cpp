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

// Negative gains would let NDCG leave [0, 1], and NaN would poison the ideal DCG.
void check_relevance(const char* function, const std::vector<float>& relevance) {
  for (std::size_t i = 0; i < relevance.size(); ++i) {
    if (!std::isfinite(relevance[i]) || relevance[i] < 0.0f) {
      throw DataError(std::string(function) + ": relevance " + std::to_string(i) + " is " +
                      std::to_string(relevance[i]) + ", expected a finite value >= 0");
    }
  }
}

void check_k(const char* function, std::size_t k) {
  if (k == 0) throw std::invalid_argument(std::string(function) + ": k must be >= 1");
}

// Indices by descending score; stable, so equal scores keep input order and every run ranks the
// same way.
std::vector<std::size_t> rank_descending(const std::vector<float>& scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return order;
}

double precision_ranked(const std::vector<std::size_t>& order, const std::vector<float>& relevance,
                        std::size_t k) {
  const std::size_t top = std::min(k, order.size());
  std::size_t hits = 0;
  for (std::size_t i = 0; i < top; ++i) hits += relevance[order[i]] > 0.0f ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(k);
}

double dcg(const std::vector<float>& gains_in_rank_order, std::size_t k) {
  const std::size_t top = std::min(k, gains_in_rank_order.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < top; ++i) {
    sum += static_cast<double>(gains_in_rank_order[i]) / std::log2(static_cast<double>(i) + 2.0);
  }
  return sum;
}

double ndcg_ranked(const std::vector<std::size_t>& order, const std::vector<float>& relevance,
                   std::size_t k) {
  std::vector<float> ranked(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) ranked[i] = relevance[order[i]];
  std::vector<float> ideal = relevance;
  std::sort(ideal.begin(), ideal.end(), std::greater<float>());
  const double ideal_dcg = dcg(ideal, k);
  if (ideal_dcg <= 0.0) return 0.0;
  return dcg(ranked, k) / ideal_dcg;
}

double reciprocal_rank_ranked(const std::vector<std::size_t>& order,
                              const std::vector<float>& relevance, std::size_t k) {
  const std::size_t top = std::min(k, order.size());
  for (std::size_t i = 0; i < top; ++i) {
    if (relevance[order[i]] > 0.0f) return 1.0 / static_cast<double>(i + 1);
  }
  return 0.0;
}

// Shared validation of the single-list ranking functions.
std::vector<std::size_t> checked_ranking(const char* function, const std::vector<float>& scores,
                                         const std::vector<float>& relevance, std::size_t k) {
  check_sizes(function, "scores", scores.size(), "relevance", relevance.size());
  check_k(function, k);
  check_no_nan_scores(function, scores);
  check_relevance(function, relevance);
  return rank_descending(scores);
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

double precision_at_k(const std::vector<float>& scores, const std::vector<float>& relevance,
                      std::size_t k) {
  const auto order = checked_ranking("precision_at_k", scores, relevance, k);
  return precision_ranked(order, relevance, k);
}

double ndcg_at_k(const std::vector<float>& scores, const std::vector<float>& relevance,
                 std::size_t k) {
  const auto order = checked_ranking("ndcg_at_k", scores, relevance, k);
  return ndcg_ranked(order, relevance, k);
}

double reciprocal_rank(const std::vector<float>& scores, const std::vector<float>& relevance,
                       std::size_t k) {
  const auto order = checked_ranking("reciprocal_rank", scores, relevance, k);
  return reciprocal_rank_ranked(order, relevance, k);
}

RankingMetrics ranking_metrics_by_group(const std::vector<float>& scores,
                                        const std::vector<float>& relevance,
                                        const std::vector<std::int64_t>& group_ids, std::size_t k) {
  const char* fn = "ranking_metrics_by_group";
  check_sizes(fn, "scores", scores.size(), "relevance", relevance.size());
  check_sizes(fn, "scores", scores.size(), "group_ids", group_ids.size());
  check_k(fn, k);
  check_no_nan_scores(fn, scores);
  check_relevance(fn, relevance);

  // Within a group, members stay in input order, so tie-breaking matches the single-list
  // functions called on that group's items alone.
  std::map<std::int64_t, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < group_ids.size(); ++i) members[group_ids[i]].push_back(i);

  RankingMetrics sum;
  std::vector<float> group_scores, group_relevance;
  for (const auto& [group, indices] : members) {
    (void)group;
    group_scores.clear();
    group_relevance.clear();
    bool any_relevant = false;
    for (std::size_t i : indices) {
      group_scores.push_back(scores[i]);
      group_relevance.push_back(relevance[i]);
      any_relevant = any_relevant || relevance[i] > 0.0f;
    }
    if (!any_relevant) continue;
    const auto order = rank_descending(group_scores);
    sum.precision += precision_ranked(order, group_relevance, k);
    sum.ndcg += ndcg_ranked(order, group_relevance, k);
    sum.mrr += reciprocal_rank_ranked(order, group_relevance, k);
    ++sum.groups;
  }
  if (sum.groups == 0) return RankingMetrics{kNaN, kNaN, kNaN, 0};
  const double n = static_cast<double>(sum.groups);
  return RankingMetrics{sum.precision / n, sum.ndcg / n, sum.mrr / n, sum.groups};
}

std::vector<float> top_k_label_relevance(const std::vector<float>& labels,
                                         const std::vector<std::int64_t>& group_ids,
                                         std::size_t k) {
  const char* fn = "top_k_label_relevance";
  check_sizes(fn, "labels", labels.size(), "group_ids", group_ids.size());
  check_k(fn, k);
  std::map<std::int64_t, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < group_ids.size(); ++i) members[group_ids[i]].push_back(i);
  std::vector<float> relevance(labels.size(), 0.0f);
  for (auto& [group, indices] : members) {
    (void)group;
    std::stable_sort(indices.begin(), indices.end(),
                     [&](std::size_t a, std::size_t b) { return labels[a] > labels[b]; });
    for (std::size_t r = 0; r < indices.size() && r < k; ++r) relevance[indices[r]] = 1.0f;
  }
  return relevance;
}

}  // namespace ml::metrics
