// Tests of the evaluation metrics and confidence intervals against hand-worked examples,
// brute-force definitions and published Student t tables.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "metrics/confidence.hpp"
#include "metrics/metrics.hpp"
#include "util/errors.hpp"

namespace {

using namespace ml::metrics;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kPi = std::acos(-1.0);

// --- ROC AUC ---------------------------------------------------------------------------------

TEST(MetricsAuc, PerfectReversedAndAllTies) {
  const std::vector<float> labels{0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.2f, 0.8f, 0.9f}, labels), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9f, 0.8f, 0.2f, 0.1f}, labels), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.5f, 0.5f, 0.5f, 0.5f}, labels), 0.5);
}

TEST(MetricsAuc, WorkedExampleWithTies) {
  // Positives 0.9, 0.7, 0.3 against negatives 0.7, 0.5: the pairs score 1, 1 | 0.5, 1 | 0, 0.
  EXPECT_NEAR(roc_auc({0.9f, 0.7f, 0.7f, 0.5f, 0.3f}, {1, 1, 0, 0, 1}), 3.5 / 6.0, 1e-12);
}

TEST(MetricsAuc, ScoresNeedNotBeProbabilities) {
  EXPECT_DOUBLE_EQ(roc_auc({-30.0f, 12.0f, -1.0f, 400.0f}, {0, 1, 0, 1}), 1.0);
}

TEST(MetricsAuc, EqualsFractionOfCorrectlyOrderedPairsOnRandomData) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 2 + trial * 7;
    // Few distinct score levels so that ties are common, as with a saturated model.
    std::uniform_int_distribution<int> level(0, trial % 2 == 0 ? 5 : 1000);
    std::bernoulli_distribution positive(0.3);
    std::vector<float> scores(n), labels(n);
    for (int i = 0; i < n; ++i) {
      scores[i] = static_cast<float>(level(rng)) / 7.0f;
      labels[i] = positive(rng) ? 1.0f : 0.0f;
    }
    double credit = 0.0, pairs = 0.0;
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        if (labels[i] != 1.0f || labels[j] != 0.0f) continue;
        pairs += 1.0;
        credit += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
      }
    }
    const double auc = roc_auc(scores, labels);
    if (pairs == 0.0) {
      EXPECT_TRUE(std::isnan(auc)) << "trial " << trial;
    } else {
      EXPECT_NEAR(auc, credit / pairs, 1e-12) << "trial " << trial;
    }
  }
}

TEST(MetricsAuc, OneClassOrEmptyIsNaN) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.9f}, {1, 1})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.9f}, {0, 0})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(MetricsAuc, RejectsBadInput) {
  EXPECT_THROW(roc_auc({0.1f, 0.2f}, {0, 1, 1}), ml::DataError);
  EXPECT_THROW(roc_auc({0.1f, 0.2f}, {0, 2}), ml::DataError);
  EXPECT_THROW(roc_auc({0.1f, std::nanf("")}, {0, 1}), ml::NumericError);
}

// --- Log loss, accuracy, regression -----------------------------------------------------------

TEST(MetricsLogLoss, MatchesDirectFormulaOnModerateLogits) {
  const std::vector<float> logits{-3.0f, -0.5f, 0.0f, 0.25f, 2.0f, 4.5f};
  const std::vector<float> labels{0, 1, 1, 0, 1, 0};
  double expected = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    expected -= labels[i] * std::log(p) + (1.0 - labels[i]) * std::log(1.0 - p);
  }
  expected /= static_cast<double>(logits.size());
  EXPECT_NEAR(log_loss_from_logits(logits, labels), expected, 1e-12);
  EXPECT_NEAR(log_loss_from_logits({0.0f}, {1}), std::log(2.0), 1e-15);
}

TEST(MetricsLogLoss, StableForHugeLogits) {
  // A naive log(sigmoid(x)) gives log(0) = -inf for these.
  EXPECT_NEAR(log_loss_from_logits({100.0f}, {1}), 0.0, 1e-30);
  EXPECT_NEAR(log_loss_from_logits({-100.0f}, {0}), 0.0, 1e-30);
  EXPECT_NEAR(log_loss_from_logits({-100.0f}, {1}), 100.0, 1e-9);
  EXPECT_NEAR(log_loss_from_logits({100.0f}, {0}), 100.0, 1e-9);
  EXPECT_TRUE(std::isfinite(log_loss_from_logits({100.0f, -100.0f, 1e30f}, {0, 1, 0})));
}

TEST(MetricsLogLoss, SoftLabelsAndErrors) {
  // With y = 0.5 and x = 0 the loss is log 2 whichever way the label leans.
  EXPECT_NEAR(log_loss_from_logits({0.0f}, {0.5f}), std::log(2.0), 1e-15);
  EXPECT_THROW(log_loss_from_logits({0.0f}, {1.5f}), ml::DataError);
  EXPECT_THROW(log_loss_from_logits({0.0f, 1.0f}, {1}), ml::DataError);
  EXPECT_TRUE(std::isnan(log_loss_from_logits({}, {})));
  EXPECT_TRUE(std::isnan(log_loss_from_logits({std::nanf("")}, {1})));
}

TEST(MetricsAccuracy, BinaryThresholdsLogitZeroAsNegative) {
  // Correct: -2 (0), 3 (1), 0 (0). Wrong: 0.1 (0), NaN (1).
  EXPECT_DOUBLE_EQ(
      binary_accuracy_from_logits({-2.0f, 3.0f, 0.0f, 0.1f, std::nanf("")}, {0, 1, 0, 0, 1}),
      3.0 / 5.0);
  EXPECT_THROW(binary_accuracy_from_logits({1.0f}, {0.5f}), ml::DataError);
  EXPECT_THROW(binary_accuracy_from_logits({1.0f}, {}), ml::DataError);
}

TEST(MetricsAccuracy, MulticlassArgmaxWithLowestIndexOnTies) {
  const std::vector<float> logits{
      0.1f, 2.0f, 0.3f,  // argmax 1
      5.0f, 5.0f, 1.0f,  // tie between 0 and 1: 0
      0.0f, 0.0f, 0.2f,  // argmax 2
      1.0f, 9.0f, 3.0f,  // argmax 1
  };
  EXPECT_DOUBLE_EQ(multiclass_accuracy(logits, 3, {1, 0, 1, 2}), 0.5);
  EXPECT_DOUBLE_EQ(multiclass_accuracy(logits, 3, {1, 1, 2, 1}), 0.75);
  EXPECT_THROW(multiclass_accuracy(logits, 3, {1, 0, 1}), ml::DataError);
  EXPECT_THROW(multiclass_accuracy(logits, 3, {1, 0, 3, 1}), ml::DataError);
  EXPECT_THROW(multiclass_accuracy(logits, 3, {1, -1, 0, 1}), ml::DataError);
  EXPECT_THROW(multiclass_accuracy(logits, 0, {}), std::invalid_argument);
  EXPECT_DOUBLE_EQ(multiclass_accuracy({std::nanf(""), 1.0f}, 2, {1}), 0.0);
}

TEST(MetricsRegression, MaeAndRmse) {
  EXPECT_DOUBLE_EQ(mae({1, 2, 3}, {2, 2, 5}), 1.0);
  EXPECT_DOUBLE_EQ(rmse({1, 2, 3}, {2, 2, 5}), std::sqrt(5.0 / 3.0));
  EXPECT_THROW(mae({1, 2}, {1}), ml::DataError);
  EXPECT_THROW(rmse({1, 2}, {1}), ml::DataError);
  EXPECT_TRUE(std::isnan(mae({}, {})));
}

// --- Ranking ---------------------------------------------------------------------------------

TEST(MetricsRanking, BinaryRelevanceWorkedExample) {
  const std::vector<float> scores{0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
  const std::vector<float> relevance{0, 1, 0, 1, 0};
  // Top 3 by score: relevance 0, 1, 0.
  EXPECT_DOUBLE_EQ(precision_at_k(scores, relevance, 3), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(reciprocal_rank(scores, relevance, 3), 0.5);
  EXPECT_DOUBLE_EQ(reciprocal_rank(scores, relevance, 1), 0.0);
  const double dcg = 1.0 / std::log2(3.0);
  const double ideal = 1.0 + 1.0 / std::log2(3.0);
  EXPECT_NEAR(ndcg_at_k(scores, relevance, 3), dcg / ideal, 1e-12);
  // At k = 5 both relevant items are in: ranks 2 and 4 against the ideal ranks 1 and 2.
  EXPECT_NEAR(ndcg_at_k(scores, relevance, 5),
              (1.0 / std::log2(3.0) + 1.0 / std::log2(5.0)) / ideal, 1e-12);
}

TEST(MetricsRanking, GradedRelevanceUsesLinearGain) {
  const std::vector<float> scores{3.0f, 2.0f, 1.0f};
  const std::vector<float> relevance{1, 3, 0};
  const double dcg = 1.0 + 3.0 / std::log2(3.0);
  const double ideal = 3.0 + 1.0 / std::log2(3.0);
  EXPECT_NEAR(ndcg_at_k(scores, relevance, 3), dcg / ideal, 1e-12);
  EXPECT_NEAR(ndcg_at_k({2.0f, 3.0f, 1.0f}, relevance, 3), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(precision_at_k(scores, relevance, 3), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(reciprocal_rank(scores, relevance, 3), 1.0);
}

TEST(MetricsRanking, TiesKeepInputOrder) {
  const std::vector<float> scores{1.0f, 1.0f, 1.0f};
  const std::vector<float> relevance{0, 0, 1};
  EXPECT_DOUBLE_EQ(precision_at_k(scores, relevance, 1), 0.0);
  EXPECT_DOUBLE_EQ(reciprocal_rank(scores, relevance, 2), 0.0);
  EXPECT_DOUBLE_EQ(reciprocal_rank(scores, relevance, 3), 1.0 / 3.0);
  EXPECT_NEAR(ndcg_at_k(scores, relevance, 3), 1.0 / std::log2(4.0), 1e-12);
}

TEST(MetricsRanking, NoRelevantShortListsAndErrors) {
  EXPECT_DOUBLE_EQ(ndcg_at_k({0.3f, 0.2f}, {0, 0}, 2), 0.0);
  EXPECT_DOUBLE_EQ(precision_at_k({0.3f, 0.2f}, {0, 0}, 2), 0.0);
  EXPECT_DOUBLE_EQ(reciprocal_rank({0.3f, 0.2f}, {0, 0}, 2), 0.0);
  // Precision divides by k even when the list is shorter; NDCG compares with the ideal of the
  // same short list.
  EXPECT_DOUBLE_EQ(precision_at_k({0.3f, 0.2f}, {1, 0}, 10), 0.1);
  EXPECT_DOUBLE_EQ(ndcg_at_k({0.3f, 0.2f}, {1, 0}, 10), 1.0);
  EXPECT_THROW(precision_at_k({0.3f}, {1}, 0), std::invalid_argument);
  EXPECT_THROW(ndcg_at_k({0.3f, 0.2f}, {1}, 2), ml::DataError);
  EXPECT_THROW(ndcg_at_k({0.3f, 0.2f}, {1, -1}, 2), ml::DataError);
  EXPECT_THROW(reciprocal_rank({std::nanf(""), 0.2f}, {1, 0}, 2), ml::NumericError);
}

TEST(MetricsRanking, ByGroupAveragesGroupsWithARelevantItem) {
  // Groups interleaved in the input; group 5 has no relevant item and must not count.
  const std::vector<float> scores{0.9f, 0.1f, 0.8f, 0.7f, 0.4f, 0.2f, 0.6f};
  const std::vector<float> relevance{0, 1, 1, 0, 0, 1, 0};
  const std::vector<std::int64_t> groups{7, 3, 7, 3, 5, 7, 5};
  const std::size_t k = 2;
  // Group 7: scores 0.9, 0.8, 0.2 with relevance 0, 1, 1. Group 3: 0.1, 0.7 with 1, 0.
  const std::vector<float> s7{0.9f, 0.8f, 0.2f}, r7{0, 1, 1};
  const std::vector<float> s3{0.1f, 0.7f}, r3{1, 0};
  const RankingMetrics m = ranking_metrics_by_group(scores, relevance, groups, k);
  EXPECT_EQ(m.groups, 2u);
  EXPECT_NEAR(m.precision, (precision_at_k(s7, r7, k) + precision_at_k(s3, r3, k)) / 2.0, 1e-12);
  EXPECT_NEAR(m.ndcg, (ndcg_at_k(s7, r7, k) + ndcg_at_k(s3, r3, k)) / 2.0, 1e-12);
  EXPECT_NEAR(m.mrr, (0.5 + 0.5) / 2.0, 1e-12);
  EXPECT_NEAR(m.precision, (0.5 + 0.5) / 2.0, 1e-12);

  const RankingMetrics none = ranking_metrics_by_group({0.1f, 0.2f}, {0, 0}, {1, 2}, 2);
  EXPECT_EQ(none.groups, 0u);
  EXPECT_TRUE(std::isnan(none.precision) && std::isnan(none.ndcg) && std::isnan(none.mrr));
  EXPECT_THROW(ranking_metrics_by_group({0.1f, 0.2f}, {0, 1}, {1}, 2), ml::DataError);
}

// --- Student t and intervals -------------------------------------------------------------------

TEST(ConfidenceStudentT, MatchesPublishedTable) {
  struct Row {
    double df, t;
  };
  const Row table[] = {{1, 12.706}, {2, 4.303}, {5, 2.571}, {10, 2.228}, {30, 2.042}, {100, 1.984}};
  for (const Row& row : table) {
    EXPECT_NEAR(student_t_quantile(0.975, row.df), row.t, 5e-4) << "df " << row.df;
    EXPECT_NEAR(student_t_quantile(0.025, row.df), -row.t, 5e-4) << "df " << row.df;
  }
  EXPECT_NEAR(student_t_quantile(0.995, 10), 3.169, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.95, 5), 2.015, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.9, 20), 1.325, 5e-4);
  for (double df : {1e4, 1e6, 1e8, 1e12, kInf}) {
    EXPECT_NEAR(student_t_quantile(0.975, df), 1.960, 5e-4) << "df " << df;
  }
  EXPECT_NEAR(student_t_quantile(0.975, kInf), 1.959963984540054, 1e-9);
}

TEST(ConfidenceStudentT, MatchesReferenceQuantilesToTenDigits) {
  // R's qt() (and scipy.stats.t.ppf) to 10 significant digits.
  EXPECT_NEAR(student_t_quantile(0.975, 9), 2.262157163, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.975, 4), 2.776445105, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.995, 29), 2.756385904, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.05, 3), -2.353363435, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.9995, 1), 636.6192488, 1e-6);
}

TEST(ConfidenceStudentT, MatchesClosedFormsForOneAndTwoDegreesOfFreedom) {
  // df = 1 is Cauchy: tan(pi (p - 1/2)). df = 2: (2p - 1) / sqrt(2 p (1 - p)).
  for (double p : {0.001, 0.05, 0.3, 0.6, 0.9, 0.975, 0.9995}) {
    EXPECT_NEAR(student_t_quantile(p, 1), std::tan(kPi * (p - 0.5)),
                1e-9 * std::max(1.0, std::abs(std::tan(kPi * (p - 0.5)))))
        << "p " << p;
    EXPECT_NEAR(student_t_quantile(p, 2), (2 * p - 1) / std::sqrt(2 * p * (1 - p)), 1e-9)
        << "p " << p;
  }
  // Fractional df (Welch) lies between its integer neighbours.
  const double t25 = student_t_quantile(0.975, 2.5);
  EXPECT_LT(t25, student_t_quantile(0.975, 2));
  EXPECT_GT(t25, student_t_quantile(0.975, 3));
}

TEST(ConfidenceStudentT, DomainEdges) {
  EXPECT_EQ(student_t_quantile(0.5, 7), 0.0);
  EXPECT_EQ(student_t_quantile(1.0, 7), kInf);
  EXPECT_EQ(student_t_quantile(0.0, 7), -kInf);
  EXPECT_TRUE(std::isnan(student_t_quantile(1.5, 7)));
  EXPECT_TRUE(std::isnan(student_t_quantile(0.9, 0)));
  EXPECT_TRUE(std::isnan(student_t_quantile(kNaN, 3)));
}

TEST(ConfidenceMeanCi, KnownSample) {
  // 1..5: mean 3, s = sqrt(2.5), t_{0.975, 4} = 2.776 from the table.
  const Interval ci = mean_ci({1, 2, 3, 4, 5});
  EXPECT_EQ(ci.n, 5u);
  EXPECT_DOUBLE_EQ(ci.mean, 3.0);
  const double expected = 2.776 * std::sqrt(2.5) / std::sqrt(5.0);
  EXPECT_NEAR(ci.half_width, expected, 1e-3);
  EXPECT_DOUBLE_EQ(ci.lower, ci.mean - ci.half_width);
  EXPECT_DOUBLE_EQ(ci.upper, ci.mean + ci.half_width);
  // A 90% interval uses t_{0.95, 4} = 2.132.
  EXPECT_NEAR(mean_ci({1, 2, 3, 4, 5}, 0.90).half_width, 2.132 * std::sqrt(0.5), 1e-3);
  // No spread, no width.
  EXPECT_DOUBLE_EQ(mean_ci({0.75, 0.75, 0.75}).half_width, 0.0);
}

TEST(ConfidenceMeanCi, SkipsNaNAndHandlesTinySamples) {
  const Interval two = mean_ci({1.0, kNaN, 3.0, kNaN});
  EXPECT_EQ(two.n, 2u);
  EXPECT_DOUBLE_EQ(two.mean, 2.0);
  EXPECT_NEAR(two.half_width, 12.706 * std::sqrt(2.0) / std::sqrt(2.0), 1e-3);

  const Interval one = mean_ci({kNaN, 0.8});
  EXPECT_EQ(one.n, 1u);
  EXPECT_DOUBLE_EQ(one.mean, 0.8);
  EXPECT_TRUE(std::isnan(one.half_width) && std::isnan(one.lower) && std::isnan(one.upper));

  const Interval none = mean_ci({kNaN});
  EXPECT_EQ(none.n, 0u);
  EXPECT_TRUE(std::isnan(none.mean) && std::isnan(none.half_width));
  EXPECT_EQ(mean_ci({}).n, 0u);

  EXPECT_THROW(mean_ci({1, 2}, 1.0), std::invalid_argument);
  EXPECT_THROW(mean_ci({1, 2}, 0.0), std::invalid_argument);
}

TEST(ConfidencePaired, NarrowerThanUnpairedWhenMethodsAreCorrelated) {
  // Task difficulty varies a lot between tasks and both methods feel it; method a is better by
  // 0.02 on every task, up to small noise.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> difficulty(0.55, 0.9);
  std::normal_distribution<double> noise(0.0, 0.005);
  std::vector<double> a, b;
  for (int task = 0; task < 40; ++task) {
    const double d = difficulty(rng);
    a.push_back(d + 0.02 + noise(rng));
    b.push_back(d + noise(rng));
  }
  const Interval paired = paired_difference_ci(a, b);
  const Interval ca = mean_ci(a), cb = mean_ci(b);
  const double unpaired = std::sqrt(ca.half_width * ca.half_width + cb.half_width * cb.half_width);
  EXPECT_EQ(paired.n, 40u);
  EXPECT_NEAR(paired.mean, ca.mean - cb.mean, 1e-12);
  EXPECT_LT(paired.half_width, 0.1 * unpaired);
  // The paired interval finds the difference; the separate intervals overlap.
  EXPECT_GT(paired.lower, 0.0);
  EXPECT_LT(cb.lower, ca.upper);
  EXPECT_GT(cb.upper, ca.lower);
}

TEST(ConfidencePaired, SkipsPairsWithANonFiniteSideAndChecksSizes) {
  const Interval d = paired_difference_ci({0.9, kNaN, 0.8, 0.7, kInf}, {0.8, 0.5, kNaN, 0.5, 0.1});
  EXPECT_EQ(d.n, 2u);
  EXPECT_NEAR(d.mean, (0.1 + 0.2) / 2.0, 1e-12);
  EXPECT_THROW(paired_difference_ci({1, 2}, {1}), ml::DataError);
}

TEST(ConfidenceFormat, PlusMinusWithDigits) {
  EXPECT_EQ(format_interval(Interval{0.72, 0.70, 0.74, 0.02, 10}, 3), "0.720 \u00b1 0.020");
  EXPECT_EQ(format_interval(Interval{0.7249, 0.0, 0.0, 0.0151, 10}, 2), "0.72 \u00b1 0.02");
  EXPECT_EQ(format_interval(mean_ci({0.8}), 3), "0.800 \u00b1 n/a");
  EXPECT_EQ(format_interval(mean_ci({}), 3), "n/a");
  EXPECT_EQ(format_interval(Interval{1.4, 1.1, 1.7, 0.3, 3}, -1), "1 \u00b1 0");
}

TEST(TopKLabelRelevance, MarksEachGroupsHighestLabelsAsRecBoleMetaRecDoes) {
  // Group 7: ratings 5, 3, 4, 4, 1, 2 -> the 3 best are the 5 and both 4s.
  // Group 9: 0/1 labels with one positive -> it and then the first negatives fill up to 3.
  const std::vector<float> labels = {5, 3, 4, 4, 1, 2, 0, 1, 0, 0};
  const std::vector<std::int64_t> groups = {7, 7, 7, 7, 7, 7, 9, 9, 9, 9};
  EXPECT_EQ(top_k_label_relevance(labels, groups, 3),
            (std::vector<float>{1, 0, 1, 1, 0, 0, 1, 1, 1, 0}));
  // Ties at the cut keep input order: of three 4s with k = 2, the first two.
  EXPECT_EQ(top_k_label_relevance({4, 4, 4}, {1, 1, 1}, 2), (std::vector<float>{1, 1, 0}));
  // Scored like RecBole: a perfect ranking of a user's 10 query ratings gives P@5 = NDCG@5 =
  // MRR@5 = 1, the reversed ranking P@5 = 0.
  std::vector<float> ratings = {1, 2, 3, 4, 5, 5, 4, 3, 2, 1};
  std::vector<std::int64_t> one(10, 1);
  auto relevance = top_k_label_relevance(ratings, one, 5);
  auto best = ranking_metrics_by_group(ratings, relevance, one, 5);
  EXPECT_DOUBLE_EQ(best.precision, 1.0);
  EXPECT_DOUBLE_EQ(best.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(best.mrr, 1.0);
  std::vector<float> reversed;
  for (float r : ratings) reversed.push_back(-r);
  auto worst = ranking_metrics_by_group(reversed, relevance, one, 5);
  EXPECT_NEAR(worst.precision, 0.2, 1e-12);  // the fifth 3 (tied) is relevant, ranked fifth
  EXPECT_THROW(top_k_label_relevance({1, 2}, {1}, 5), ml::DataError);
}

}  // namespace
