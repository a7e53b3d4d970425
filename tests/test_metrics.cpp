// Tests of the evaluation metrics and confidence intervals against hand-worked examples,
// brute-force definitions and published Student t tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
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

TEST(MetricsRanking, TiedItemsShareTheirPositionsWhateverTheInputOrder) {
  // Three tied items, one relevant: it stands at each of ranks 1..3 with probability 1/3.
  for (const std::vector<float>& relevance :
       {std::vector<float>{0, 0, 1}, std::vector<float>{1, 0, 0}, std::vector<float>{0, 1, 0}}) {
    const std::vector<float> scores{1.0f, 1.0f, 1.0f};
    EXPECT_NEAR(precision_at_k(scores, relevance, 1), 1.0 / 3.0, 1e-15);
    EXPECT_NEAR(reciprocal_rank(scores, relevance, 2), (1.0 + 1.0 / 2.0) / 3.0, 1e-15);
    EXPECT_NEAR(reciprocal_rank(scores, relevance, 3), (1.0 + 1.0 / 2.0 + 1.0 / 3.0) / 3.0, 1e-15);
    EXPECT_NEAR(ndcg_at_k(scores, relevance, 3),
                (1.0 + 1.0 / std::log2(3.0) + 1.0 / std::log2(4.0)) / 3.0, 1e-15);
  }
  // A tie below a strictly better item only shares the positions it spans (2 and 3).
  EXPECT_NEAR(reciprocal_rank({2.0f, 1.0f, 1.0f}, {0, 1, 0}, 3), (1.0 / 2.0 + 1.0 / 3.0) / 2.0,
              1e-15);
  EXPECT_NEAR(precision_at_k({2.0f, 1.0f, 1.0f}, {0, 1, 0}, 2), 0.5 / 2.0, 1e-15);
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

// The sum of the first `positions` DCG discounts 1 / log2(rank + 1).
double discount_sum(std::size_t positions) {
  double sum = 0.0;
  for (std::size_t p = 0; p < positions; ++p) sum += 1.0 / std::log2(static_cast<double>(p) + 2.0);
  return sum;
}

TEST(TopKLabelRelevance, MarksEachGroupsHighestLabelsAndPoolsTheTiesAtTheCut) {
  // Group 7: ratings 5, 3, 4, 4, 1, 2 -> the 3 best are the 5 and both 4s, no tie at the cut.
  // Group 9: 0/1 labels with one positive -> it, and 2 of the 3 tied negatives at random.
  const std::vector<float> labels = {5, 3, 4, 4, 1, 2, 0, 1, 0, 0};
  const std::vector<std::int64_t> groups = {7, 7, 7, 7, 7, 7, 9, 9, 9, 9};
  const Relevance r = top_k_label_relevance(labels, groups, 3);
  EXPECT_EQ(r.gain, (std::vector<float>{1, 0, 1, 1, 0, 0, 1, 1, 1, 1}));
  const std::int32_t none = Relevance::kNoPool;
  EXPECT_EQ(r.pool, (std::vector<std::int32_t>{none, none, none, none, none, none, 0, none, 0, 0}));
  EXPECT_EQ(r.drawn, (std::vector<std::size_t>{2}));
  // Of three 4s with k = 2, a random two; with k >= the group size, everything, no pool.
  const Relevance tied = top_k_label_relevance({4, 4, 4}, {1, 1, 1}, 2);
  EXPECT_EQ(tied.pool, (std::vector<std::int32_t>{0, 0, 0}));
  EXPECT_EQ(tied.drawn, (std::vector<std::size_t>{2}));
  EXPECT_TRUE(top_k_label_relevance({4, 4, 4}, {1, 1, 1}, 3).drawn.empty());
  // Scored like RecBole: ranking a user's 10 query ratings by the ratings themselves gives P@4 =
  // NDCG@4 = MRR@4 = 1, the reversed ranking P@4 = 0.
  std::vector<float> ratings = {1, 2, 3, 4, 5, 5, 4, 3, 2, 1};
  std::vector<float> reversed;
  for (float x : ratings) reversed.push_back(-x);
  std::vector<std::int64_t> one(10, 1);
  auto best = ranking_metrics_by_group(ratings, top_k_label_relevance(ratings, one, 4), one, 4);
  EXPECT_DOUBLE_EQ(best.precision, 1.0);
  EXPECT_DOUBLE_EQ(best.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(best.mrr, 1.0);
  EXPECT_DOUBLE_EQ(
      ranking_metrics_by_group(reversed, top_k_label_relevance(ratings, one, 4), one, 4).precision,
      0.0);
  // With k = 5 the fifth-best rating, a 3, ties with the other 3: either is relevant with
  // probability 1/2, and no ranking can tell which, so even the ratings' own order gets P@5 =
  // (4 + 1/2) / 5, and the reversed one (the 3s at ranks 5 and 6) 0.5 / 5.
  auto relevance = top_k_label_relevance(ratings, one, 5);
  auto tied_best = ranking_metrics_by_group(ratings, relevance, one, 5);
  EXPECT_NEAR(tied_best.precision, 4.5 / 5.0, 1e-12);
  EXPECT_NEAR(tied_best.ndcg, (discount_sum(4) + 0.5 / std::log2(6.0)) / discount_sum(5), 1e-12);
  EXPECT_DOUBLE_EQ(tied_best.mrr, 1.0);
  auto worst = ranking_metrics_by_group(reversed, relevance, one, 5);
  EXPECT_NEAR(worst.precision, 0.5 / 5.0, 1e-12);
  EXPECT_THROW(top_k_label_relevance({1, 2}, {1}, 5), ml::DataError);
  EXPECT_THROW(top_k_label_relevance({1, std::nanf("")}, {1, 1}, 5), ml::DataError);
}

// --- Tie-aware ranking against brute force ------------------------------------------------------

double binomial(int n, int r) {
  if (r < 0 || r > n) return 0.0;
  double c = 1.0;
  for (int i = 1; i <= r; ++i) c = c * (n - r + i) / i;
  return c;
}

TEST(MetricsRanking, ConstantScorerGetsTheClosedFormExpectation) {
  // n items with R relevant, all scores equal, n >= k: every item stands in the top k with
  // probability k / n, so P@k = R / n and E[DCG@k] = (R / n) x the sum of the k discounts; the
  // first relevant item is at rank j + 1 with probability C(n-1-j, R-1) / C(n, R).
  for (int n : {5, 10, 17}) {
    for (int relevant : {1, 2, 5}) {
      for (std::size_t k : {1u, 3u, 5u}) {
        std::vector<float> scores(static_cast<std::size_t>(n), 0.25f), relevance(scores.size(), 0);
        for (int i = 0; i < relevant; ++i) relevance[static_cast<std::size_t>(i * 3 % n)] = 1;
        double mrr = 0.0;
        for (int j = 0; j < static_cast<int>(k); ++j)
          mrr += binomial(n - 1 - j, relevant - 1) / binomial(n, relevant) / (j + 1);
        const double share = static_cast<double>(relevant) / n;
        EXPECT_NEAR(precision_at_k(scores, relevance, k), share, 1e-12) << n << " " << relevant;
        EXPECT_NEAR(ndcg_at_k(scores, relevance, k),
                    share * discount_sum(k) /
                        discount_sum(std::min<std::size_t>(k, static_cast<std::size_t>(relevant))),
                    1e-12)
            << n << " " << relevant << " " << k;
        EXPECT_NEAR(reciprocal_rank(scores, relevance, k), mrr, 1e-12)
            << n << " " << relevant << " " << k;
      }
    }
  }
}

TEST(MetricsRanking, ConstantScorerOnUsersWithTiedRatingsGetsTheExpectationNotTheInputOrder) {
  // The case: RecBole's top-5 labels on users whose ratings tie at the cut, scored by a
  // model that gives every item the same score. Breaking both ties by input order lined the
  // relevant set up with the ranking; the expectation is P@5 = NDCG@5 = 5/10 and MRR@5 =
  // sum_j C(9-j, 4) / C(10, 5) / (j + 1), whatever the input order.
  const std::vector<float> ratings = {5, 4, 4, 3, 3, 3, 3, 2, 1, 1, 4, 4, 4, 4, 4, 4, 3, 3, 1, 1};
  const std::vector<std::int64_t> users = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                           2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  double mrr = 0.0;
  for (int j = 0; j < 5; ++j) mrr += binomial(9 - j, 4) / binomial(10, 5) / (j + 1);
  std::mt19937 rng(16);
  std::vector<std::size_t> order(ratings.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (int shuffle = 0; shuffle < 5; ++shuffle) {
    std::vector<float> y;
    std::vector<std::int64_t> g;
    for (std::size_t i : order) y.push_back(ratings[i]), g.push_back(users[i]);
    const std::vector<float> constant(y.size(), 3.5f);
    const RankingMetrics m =
        ranking_metrics_by_group(constant, top_k_label_relevance(y, g, 5), g, 5);
    EXPECT_EQ(m.groups, 2u);
    EXPECT_NEAR(m.precision, 0.5, 1e-12);
    EXPECT_NEAR(m.ndcg, 0.5, 1e-12);
    EXPECT_NEAR(m.mrr, mrr, 1e-12);
    EXPECT_NEAR(m.mrr, 0.704, 5e-4);  // "a random ranking scores MRR@5 0.704" (docs/RESULTS.md)
    std::shuffle(order.begin(), order.end(), rng);
  }
}

struct Expected {
  double precision = 0, ndcg = 0, mrr = 0;
};

// The textbook metrics averaged over every order of the items that ranks higher scores first
// (tied items in every order) and every relevant set the pools allow, all equally likely.
Expected brute_force(const std::vector<float>& scores, const Relevance& relevance, std::size_t k) {
  const std::size_t n = scores.size();
  std::vector<std::vector<double>> gains_of_draw;  // per possible relevant set: each item's gain
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    std::vector<std::size_t> taken(relevance.drawn.size(), 0);
    std::vector<double> gains(n, 0.0);
    bool possible = true;
    for (std::size_t i = 0; i < n; ++i) {
      const bool chosen = (mask >> i) & 1u;
      const std::int32_t pool = relevance.pool.empty() ? Relevance::kNoPool : relevance.pool[i];
      if (pool == Relevance::kNoPool) {
        possible = possible && !chosen;
        gains[i] = relevance.gain[i];
      } else if (chosen) {
        ++taken[static_cast<std::size_t>(pool)];
        gains[i] = relevance.gain[i];
      }
    }
    if (possible && taken == relevance.drawn) gains_of_draw.push_back(gains);
  }
  Expected sum;
  double count = 0.0;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  do {
    bool descending = true;
    for (std::size_t p = 1; p < n; ++p)
      descending = descending && scores[order[p - 1]] >= scores[order[p]];
    if (!descending) continue;
    for (const auto& gains : gains_of_draw) {
      std::vector<double> ideal = gains;
      std::sort(ideal.begin(), ideal.end(), std::greater<double>());
      double hits = 0, dcg = 0, ideal_dcg = 0, rr = 0;
      for (std::size_t p = 0; p < n && p < k; ++p) {
        const double g = gains[order[p]];
        hits += g > 0 ? 1 : 0;
        dcg += g / std::log2(static_cast<double>(p) + 2.0);
        ideal_dcg += ideal[p] / std::log2(static_cast<double>(p) + 2.0);
        if (g > 0 && rr == 0) rr = 1.0 / static_cast<double>(p + 1);
      }
      sum.precision += hits / static_cast<double>(k);
      sum.ndcg += ideal_dcg > 0 ? dcg / ideal_dcg : 0.0;
      sum.mrr += rr;
      count += 1;
    }
  } while (std::next_permutation(order.begin(), order.end()));
  return {sum.precision / count, sum.ndcg / count, sum.mrr / count};
}

// A small list with score ties (few score levels) and one of four kinds of relevance: binary,
// graded, RecBole's top labels of tied labels (one pool), or two explicit pools.
struct RandomList {
  std::vector<float> scores;
  Relevance relevance;
  std::size_t k = 1;
};

RandomList random_list(std::mt19937& rng, int kind, std::size_t max_items) {
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  RandomList list;
  const auto n = static_cast<std::size_t>(uniform(1, static_cast<int>(max_items)));
  const int levels = uniform(0, 3);  // 0: every score tied
  for (std::size_t i = 0; i < n; ++i) list.scores.push_back(static_cast<float>(uniform(0, levels)));
  list.k = static_cast<std::size_t>(uniform(1, static_cast<int>(n) + 1));
  std::vector<float> gain(n, 0.0f);
  switch (kind) {
    case 0:
      for (auto& g : gain) g = static_cast<float>(uniform(0, 1));
      list.relevance = gain;
      break;
    case 1:
      for (auto& g : gain) g = static_cast<float>(uniform(0, 3));
      list.relevance = gain;
      break;
    case 2: {
      std::vector<float> labels(n);
      for (auto& y : labels) y = static_cast<float>(uniform(1, 3));
      list.relevance =
          top_k_label_relevance(labels, std::vector<std::int64_t>(n, 0),
                                static_cast<std::size_t>(uniform(1, static_cast<int>(n))));
      break;
    }
    default: {
      list.relevance.gain.assign(n, 0.0f);
      list.relevance.pool.assign(n, Relevance::kNoPool);
      std::vector<std::size_t> size(2, 0);
      for (std::size_t i = 0; i < n; ++i) {
        const int where = uniform(-1, 2);  // -1: irrelevant, 2: relevant for sure, else a pool
        if (where == 2) list.relevance.gain[i] = 1.0f;
        if (where < 0 || where > 1) continue;
        list.relevance.pool[i] = where;
        list.relevance.gain[i] = where == 0 ? 1.0f : 2.0f;
        ++size[static_cast<std::size_t>(where)];
      }
      for (std::size_t p = 0; p < 2; ++p)
        list.relevance.drawn.push_back(
            static_cast<std::size_t>(uniform(0, static_cast<int>(size[p]))));
    }
  }
  return list;
}

TEST(MetricsRanking, EqualsTheAverageOverEveryOrderOfTiesAndEveryDrawOfTiedLabels) {
  std::mt19937 rng(2008);
  for (int trial = 0; trial < 400; ++trial) {
    const RandomList list = random_list(rng, trial % 4, 7);
    const Expected want = brute_force(list.scores, list.relevance, list.k);
    EXPECT_NEAR(precision_at_k(list.scores, list.relevance, list.k), want.precision, 1e-12)
        << "trial " << trial;
    EXPECT_NEAR(ndcg_at_k(list.scores, list.relevance, list.k), want.ndcg, 1e-12)
        << "trial " << trial;
    EXPECT_NEAR(reciprocal_rank(list.scores, list.relevance, list.k), want.mrr, 1e-12)
        << "trial " << trial;
  }
}

TEST(MetricsRanking, ByGroupAveragesTheBruteForceOfEachGroupInAnyInputOrder) {
  // Users with tied ratings and tied scores, interleaved in the input, relevance from their top
  // labels: each group's value is its own brute force, and shuffling the rows changes nothing.
  std::mt19937 rng(42);
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<float> scores, labels;
    std::vector<std::int64_t> groups;
    const int users = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int u = 0; u < users; ++u) {
      const int n = std::uniform_int_distribution<int>(1, 6)(rng);
      for (int i = 0; i < n; ++i) {
        scores.push_back(static_cast<float>(std::uniform_int_distribution<int>(0, 2)(rng)));
        labels.push_back(static_cast<float>(std::uniform_int_distribution<int>(1, 3)(rng)));
        groups.push_back(100 - 7 * u);
      }
    }
    const std::size_t top = 3, k = std::uniform_int_distribution<std::size_t>(1, 4)(rng);
    const RankingMetrics m =
        ranking_metrics_by_group(scores, top_k_label_relevance(labels, groups, top), groups, k);
    Expected sum;
    for (int u = 0; u < users; ++u) {
      std::vector<float> s, y;
      for (std::size_t i = 0; i < groups.size(); ++i)
        if (groups[i] == 100 - 7 * u) s.push_back(scores[i]), y.push_back(labels[i]);
      const Expected e =
          brute_force(s, top_k_label_relevance(y, std::vector<std::int64_t>(y.size(), 0), top), k);
      sum.precision += e.precision / users;
      sum.ndcg += e.ndcg / users;
      sum.mrr += e.mrr / users;
    }
    EXPECT_EQ(m.groups, static_cast<std::size_t>(users));
    EXPECT_NEAR(m.precision, sum.precision, 1e-12) << "trial " << trial;
    EXPECT_NEAR(m.ndcg, sum.ndcg, 1e-12) << "trial " << trial;
    EXPECT_NEAR(m.mrr, sum.mrr, 1e-12) << "trial " << trial;

    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<float> s2, y2;
    std::vector<std::int64_t> g2;
    for (std::size_t i : order)
      s2.push_back(scores[i]), y2.push_back(labels[i]), g2.push_back(groups[i]);
    const RankingMetrics shuffled =
        ranking_metrics_by_group(s2, top_k_label_relevance(y2, g2, top), g2, k);
    EXPECT_NEAR(shuffled.precision, m.precision, 1e-12) << "trial " << trial;
    EXPECT_NEAR(shuffled.ndcg, m.ndcg, 1e-12) << "trial " << trial;
    EXPECT_NEAR(shuffled.mrr, m.mrr, 1e-12) << "trial " << trial;
  }
}

TEST(MetricsRanking, FixedExactlyWhenEveryScoringGivesTheSameValue) {
  // Every scoring's value is an average of strict orders' values (ties are random orders), so a
  // metric is fixed exactly when every strict order of the list gives the same value.
  std::mt19937 rng(6);
  int fixed_seen[3] = {0, 0, 0}, free_seen[3] = {0, 0, 0};
  for (int trial = 0; trial < 600; ++trial) {
    const RandomList list = random_list(rng, trial % 4, 6);
    const std::size_t n = list.scores.size();
    const std::vector<std::int64_t> one(n, 3);
    const RankingMetrics flags = ranking_metrics_by_group(list.scores, list.relevance, one, list.k);
    if (flags.groups == 0) {
      EXPECT_FALSE(flags.precision_fixed || flags.ndcg_fixed || flags.mrr_fixed);
      continue;
    }
    double low[3] = {INFINITY, INFINITY, INFINITY}, high[3] = {-INFINITY, -INFINITY, -INFINITY};
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    do {
      std::vector<float> strict(n);
      for (std::size_t p = 0; p < n; ++p) strict[order[p]] = static_cast<float>(n - p);
      const RankingMetrics m = ranking_metrics_by_group(strict, list.relevance, one, list.k);
      const double v[3] = {m.precision, m.ndcg, m.mrr};
      for (int x = 0; x < 3; ++x)
        low[x] = std::min(low[x], v[x]), high[x] = std::max(high[x], v[x]);
    } while (std::next_permutation(order.begin(), order.end()));
    const bool flag[3] = {flags.precision_fixed, flags.ndcg_fixed, flags.mrr_fixed};
    for (int x = 0; x < 3; ++x) {
      EXPECT_EQ(flag[x], high[x] - low[x] < 1e-12)
          << "trial " << trial << " metric " << x << " spread " << high[x] - low[x];
      (flag[x] ? fixed_seen : free_seen)[x]++;
    }
  }
  for (int x = 0; x < 3; ++x) {  // both answers were put to the test
    EXPECT_GT(fixed_seen[x], 10) << x;
    EXPECT_GT(free_seen[x], 10) << x;
  }
  // The case: one relevant item among at most 5 fixes P@5 at 0.2, not NDCG or MRR.
  const RankingMetrics one_positive =
      ranking_metrics_by_group({0.3f, 0.9f, 0.1f}, {0, 1, 0}, {1, 1, 1}, 5);
  EXPECT_TRUE(one_positive.precision_fixed);
  EXPECT_DOUBLE_EQ(one_positive.precision, 0.2);
  EXPECT_FALSE(one_positive.ndcg_fixed || one_positive.mrr_fixed);
  // Two tie pools with equal odds of relevance: exchangeable for MRR@1, not for MRR@2.
  Relevance two_pools;
  two_pools.gain = {1, 1, 1, 1};
  two_pools.pool = {0, 0, 1, 1};
  two_pools.drawn = {1, 1};
  EXPECT_TRUE(ranking_metrics_by_group({1, 2, 3, 4}, two_pools, {1, 1, 1, 1}, 1).mrr_fixed);
  EXPECT_FALSE(ranking_metrics_by_group({1, 2, 3, 4}, two_pools, {1, 1, 1, 1}, 2).mrr_fixed);
}

TEST(MetricsRanking, RelevanceWithPoolsIsChecked) {
  Relevance r;
  r.gain = {1, 1, 0};
  r.pool = {0, 0, Relevance::kNoPool};
  r.drawn = {3};  // more than the pool holds
  EXPECT_THROW(precision_at_k({1, 2, 3}, r, 2), ml::DataError);
  r.drawn = {1};
  EXPECT_NO_THROW(precision_at_k({1, 2, 3}, r, 2));
  r.gain = {1, 2, 0};  // unequal gains in one pool: the ideal DCG would depend on the draw
  EXPECT_THROW(ndcg_at_k({1, 2, 3}, r, 2), ml::DataError);
  r.gain = {1, 1, 0};
  r.pool = {0, 1, Relevance::kNoPool};  // pool 1 does not exist
  EXPECT_THROW(reciprocal_rank({1, 2, 3}, r, 2), ml::DataError);
  r.pool = {0, 0, Relevance::kNoPool};
  // A pool spanning two groups.
  EXPECT_THROW(ranking_metrics_by_group({1, 2, 3}, r, {1, 2, 2}, 2), ml::DataError);
  EXPECT_NO_THROW(ranking_metrics_by_group({1, 2, 3}, r, {1, 1, 2}, 2));
}

TEST(MetricsAuc, IndependentOfInputOrder) {
  // Average ranks give each tied positive/negative pair one half: the expectation over a random
  // order of the ties, so shuffling the input changes nothing.
  std::mt19937 rng(1982);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> scores, labels;
    for (int i = 0; i < 12; ++i) {
      scores.push_back(static_cast<float>(std::uniform_int_distribution<int>(0, 2)(rng)));
      labels.push_back(static_cast<float>(i % 3 == 0));
    }
    const double auc = roc_auc(scores, labels);
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<float> s, y;
    for (std::size_t i : order) s.push_back(scores[i]), y.push_back(labels[i]);
    EXPECT_DOUBLE_EQ(roc_auc(s, y), auc) << "trial " << trial;
  }
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<float>(8, 0.3f), {1, 0, 0, 1, 0, 1, 0, 0}), 0.5);
}

}  // namespace
