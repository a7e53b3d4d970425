// Evaluation metrics for one episode's query set, on plain vectors so that eval, reports and tests
// share one definition of every number without pulling in torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
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
// negative, a tie counting one half (Mann-Whitney U with average ranks). Higher score means more
// likely positive; scores need not be probabilities. NaN when only one class is present: the AUC
// is undefined there, and callers skip such episodes (mean_ci skips NaN).
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

// Ranking metrics for one list (one user or query). Items are ranked by score, descending; equal
// scores keep their original order (stable sort), so results are deterministic. Relevance is
// binary or graded, must be finite and >= 0 (else ml::DataError); an item is relevant when its
// relevance is > 0. A list shorter than k is ranked whole.

// Relevant items among the top k, divided by k (not by the list length: a short list cannot
// fill the top k, which is what a user sees).
double precision_at_k(const std::vector<float>& scores, const std::vector<float>& relevance,
                      std::size_t k);

// DCG@k / ideal DCG@k with linear gain (the relevance itself) and discount log2(rank + 1),
// rank counted from 1. The ideal DCG ranks the same relevances sorted descending. 0 when no item
// is relevant (there is nothing to find, and the ratio would be 0/0).
double ndcg_at_k(const std::vector<float>& scores, const std::vector<float>& relevance,
                 std::size_t k);

// 1 / rank of the first relevant item within the top k, else 0 (one list's term of MRR@k).
double reciprocal_rank(const std::vector<float>& scores, const std::vector<float>& relevance,
                       std::size_t k);

struct RankingMetrics {
  double precision = 0, ndcg = 0, mrr = 0;
  std::size_t groups = 0;  // lists that had a relevant item, i.e. that were averaged
};

// The three ranking metrics per group (items sharing a group id, in any order in the input),
// averaged over the groups holding at least one relevant item: a group without one carries no
// signal about ranking quality. All NaN (groups == 0) when no group qualifies.
RankingMetrics ranking_metrics_by_group(const std::vector<float>& scores,
                                        const std::vector<float>& relevance,
                                        const std::vector<std::int64_t>& group_ids, std::size_t k);

// RecBole-MetaRec's relevance for per-user ranking (its MetaCollector): in each group the k items
// with the highest labels are relevant (1), the rest not (0), whatever the label values; equal
// labels keep input order, as torch.topk leaves ties in an arbitrary order. With ratings this
// marks a user's k best-rated query items; with 0/1 labels every positive when there are at most
// k (then negatives in input order fill up to k), else the first k positives. Every group with
// an item then has a relevant one, so ranking_metrics_by_group averages every group.
std::vector<float> top_k_label_relevance(const std::vector<float>& labels,
                                         const std::vector<std::int64_t>& group_ids, std::size_t k);

}  // namespace ml::metrics
