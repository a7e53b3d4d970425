// Confidence intervals for the cold-start protocol: a mean over held-out tasks with a Student t
// interval, and the paired per-task difference that compares two methods on the same tasks.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ml::metrics {

struct Interval {
  double mean = 0, lower = 0, upper = 0, half_width = 0;
  std::size_t n = 0;  // values that entered the interval (NaN ones are skipped)
};

// The p-quantile of Student's t with `df` > 0 degrees of freedom (df need not be an integer;
// df = +infinity gives the standard normal), from Boost.Math to near double precision. Follows
// <cmath> style for domain errors: NaN for p outside [0, 1] or df <= 0 or NaN; p = 0 or 1 give -inf
// or +inf.
double student_t_quantile(double p, double df);

// Mean of `values` with a two-sided Student t interval at `level` (0.95: mean +- t_{0.975, n-1}
// s / sqrt(n), s the n-1 sample standard deviation). NaN values are skipped (an episode whose
// metric is undefined, e.g. AUC with one class), and `n` counts the rest. n == 1 gives the mean
// with a NaN half width and bounds: one value says nothing about spread, and 0 would claim
// certainty. n == 0 gives all NaN. `level` outside (0, 1) is a caller bug: std::invalid_argument.
Interval mean_ci(const std::vector<double>& values, double level = 0.95);

// The interval of mean(a_i - b_i) over the pairs where both a_i and b_i are finite: with a and
// b scored on the same tasks, the task-to-task variation cancels, so this is the interval to
// trust when asking whether method a beats method b. Different lengths are ml::DataError.
Interval paired_difference_ci(const std::vector<double>& a, const std::vector<double>& b,
                              double level = 0.95);

// "0.720 ± 0.020" with `digits` decimals (negative counts as 0). A NaN half width prints as
// "0.720 ± n/a" and a NaN mean as "n/a", so tables never show "nan".
std::string format_interval(const Interval& interval, int digits);

// A paired difference with its sign and interval: "+0.012 [-0.010, +0.034]"; "+0.012 [n/a]"
// when the half width is NaN and "n/a" when there is no mean.
std::string format_difference(const Interval& difference, int digits);

}  // namespace ml::metrics
