// Evaluation metrics for one episode's query set, on plain vectors so that eval, reports and tests
// share one definition of every number without pulling in torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

namespace ml::metrics {

// Query metrics of one model on one query set (models::query_metrics computes them); NaN where a
// metric does not apply (the label kind does not have it, or AUC on a one-class query).
struct QueryMetrics {
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  double auc = kNone, log_loss = kNone, accuracy = kNone;  // binary (accuracy also multiclass)
  double rmse = kNone, mae = kNone;                        // regression
};

// Conventions shared by every function below:
// - Paired inputs must have equal lengths, else ml::DataError naming the function and both sizes.
// - An empty input gives NaN: there is nothing to average, and NaN is what mean_ci() skips.
// - Binary labels are exactly 0 or 1 (anything else is ml::DataError), except in
//   log_loss_from_logits, which also accepts soft labels in [0, 1].
// - Rank-based metrics (AUC, ranking) throw ml::NumericError on a NaN score: there is no order to
//   rank by, and a diverged model must not be scored as a random one. Arithmetic metrics
//   (log loss, MAE, RMSE) let a NaN propagate to a NaN result; accuracies count a NaN logit as a
//   wrong prediction.
// - Caller bugs (k < 1, classes == 0) throw std::invalid_argument.

// Area under the ROC curve: the probability that a random positive scores above a random
// negative, a tie counting one half (Mann-Whitney U with average ranks; Hanley & McNeil, "The
// meaning and use of the area under a receiver operating characteristic (ROC) curve", Radiology
// 1982). Half credit for a tie is exactly the expectation over a uniformly random order of the
// tied items, so the value does not depend on the input order. Higher score means more likely
// positive; scores need not be probabilities. NaN when only one class is present: the AUC is
// undefined there, and callers skip such episodes (mean_ci skips NaN).
double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels);

// Mean binary cross-entropy of sigmoid(logit) against the label, computed as
// softplus(x) - y*x so that logits of any magnitude stay finite (no log(0)). Soft labels in
// [0, 1] are accepted.
double log_loss_from_logits(const std::vector<float>& logits, const std::vector<float>& labels);

// Fraction of examples where (logit > 0) equals the label; a logit of exactly 0 (p = 0.5)
// predicts the negative class.
double binary_accuracy_from_logits(const std::vector<float>& logits,
                                   const std::vector<float>& labels);

// Mean absolute error and root mean squared error for regression targets (ratings, spend).
double mae(const std::vector<float>& pred, const std::vector<float>& target);
double rmse(const std::vector<float>& pred, const std::vector<float>& target);

// Fraction of rows whose argmax equals the label. `logits_row_major` holds labels.size() rows of
// `classes` values; a tie goes to the lowest class index. Labels outside [0, classes) are
// ml::DataError.
double multiclass_accuracy(const std::vector<float>& logits_row_major, std::size_t classes,
                           const std::vector<int>& labels);

// Ranking metrics for one list (one user or query). Items are ranked by score, descending, and
// items with equal scores stand in a uniformly random order: every metric below is the exact
// expectation over that order (and over the random part of the relevance, see Relevance), so a
// model gains nothing from ties and the input order never matters. A list shorter than k is
// ranked whole. Scores tie only when exactly equal.
//
// The expectations (McSherry & Najork, "Computing Information Retrieval Performance Measures
// Efficiently in the Presence of Tied Scores", ECIR 2008): an item in a tie block occupying the
// 0-based positions [b, b + n) lands on each of them with probability 1/n, so P@k and DCG@k,
// linear in what stands at each position, take each block's mean relevance at each of its
// positions. MRR@k is not linear: a block of n items holding r relevant ones has its first
// relevant item at offset j with probability C(n-1-j, r-1) / C(n, r), and a block is reached only
// when every block before it holds no relevant item.

// Which items of one list (or of several, see ranking_metrics_by_group) are relevant, part of it
// possibly decided at random. An item outside every tie pool is relevant when its gain is > 0.
// Of a tie pool's items exactly drawn[pool] are relevant, a subset chosen uniformly at random:
// e.g. the items tied with the k-th highest label when only some of them fit into the top k
// (top_k_label_relevance). Every pooled item's gain must be > 0 and equal within its pool, so
// the relevant gains, and with them the ideal DCG, do not depend on the draw; a pool lies within
// one list. A plain vector of gains converts to a Relevance without pools. Violations are
// ml::DataError.
struct Relevance {
  static constexpr std::int32_t kNoPool = -1;
  std::vector<float> gain;         // per item: finite, >= 0 (graded, or 1 for relevant)
  std::vector<std::int32_t> pool;  // per item: its tie pool or kNoPool; empty = no item pooled
  std::vector<std::size_t> drawn;  // per pool: how many of its items are relevant (<= its size)

  Relevance() = default;
  Relevance(std::vector<float> gains) : gain(std::move(gains)) {}  // NOLINT: a fixed relevance
  Relevance(std::initializer_list<float> gains) : gain(gains) {}
};

// The expectation of the relevant items among the top k, divided by k (not by the list length:
// a short list cannot fill the top k, which is what a user sees). With b the number of a tie
// block's positions inside the top k and n its size, the block adds (b / n) x (its items'
// probabilities of being relevant) to the count.
double precision_at_k(const std::vector<float>& scores, const Relevance& relevance, std::size_t k);

// E[DCG@k] / ideal DCG@k with linear gain (the relevance itself) and discount log2(rank + 1),
// rank counted from 1; an item adds gain x P(relevant) x its tie block's mean discount. The
// ideal DCG ranks the relevant gains sorted descending (it does not depend on any draw). 0 when
// no item is relevant (there is nothing to find, and the ratio would be 0/0).
double ndcg_at_k(const std::vector<float>& scores, const Relevance& relevance, std::size_t k);

// E[1 / rank of the first relevant item within the top k, else 0] (one list's term of MRR@k).
// Tie blocks are visited in score order; with a tie pool, the number of its relevant items in a
// block is hypergeometric over the pool items not yet passed (all of them irrelevant, or the
// first relevant item would have come earlier), and several pools' counts are convolved.
double reciprocal_rank(const std::vector<float>& scores, const Relevance& relevance, std::size_t k);

struct RankingMetrics {
  double precision = 0, ndcg = 0, mrr = 0;
  std::size_t groups = 0;  // lists that had a relevant item, i.e. that were averaged
  // True when the lists' composition fixes the metric: every scoring of every averaged list
  // gives the same value, so the value says nothing about the model. Exactly when, per list of
  // n items with p_i the probability that item i is relevant and g_i its gain:
  // P@k: n <= k, or every p_i equal. NDCG@k: n = 1, or every g_i p_i equal. MRR@k: n = 1, or
  // every p_i equal and (k = 1, n = 2, or at most one tie pool with 0 < drawn < size), since two
  // adjacent items at rank j <= k swap without effect iff P(none before relevant, the one
  // relevant) is the same for both. False when groups == 0.
  bool precision_fixed = false, ndcg_fixed = false, mrr_fixed = false;
};

// The three ranking metrics per group (items sharing a group id, in any order in the input),
// averaged over the groups holding at least one relevant item: a group without one carries no
// signal about ranking quality. All NaN (groups == 0) when no group qualifies. A tie pool
// spanning two groups is ml::DataError.
RankingMetrics ranking_metrics_by_group(const std::vector<float>& scores,
                                        const Relevance& relevance,
                                        const std::vector<std::int64_t>& group_ids, std::size_t k);

// RecBole-MetaRec's relevance for per-user ranking (its MetaCollector): in each group the k items
// with the highest labels are relevant (gain 1), the rest not, whatever the label values. When
// the k-th highest label is shared with items below the cut, torch.topk keeps an arbitrary m of
// those t tied items; here they form the group's tie pool with drawn = m, so the metrics take
// the exact expectation over which m. With ratings this marks a user's k best-rated query items;
// with 0/1 labels every positive when there are at most k (plus a random k - positives of the
// negatives), else a random k of the positives. Every group with an item then has a relevant
// one, so ranking_metrics_by_group averages every group.
Relevance top_k_label_relevance(const std::vector<float>& labels,
                                const std::vector<std::int64_t>& group_ids, std::size_t k);

}  // namespace ml::metrics
