// Student t quantiles (Boost.Math) and the mean / paired-difference intervals built on them.
#include "metrics/confidence.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Domain errors come back as NaN and overflow as infinity, the <cmath> way the header
// promises, instead of Boost's default exceptions.
using QuietPolicy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::ignore_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>>;

// The t >= 0 with P(T > t) = q, for q in (0, 0.5]. Taken from the upper tail directly, so a
// small q (a 0.999 interval) never goes through 1 - q and loses its digits.
double t_upper_quantile(double q, double df) {
  if (std::isinf(df)) {
    return boost::math::quantile(
        boost::math::complement(boost::math::normal_distribution<double, QuietPolicy>(), q));
  }
  return boost::math::quantile(
      boost::math::complement(boost::math::students_t_distribution<double, QuietPolicy>(df), q));
}

void check_level(const char* function, double level) {
  if (!(level > 0.0 && level < 1.0)) {
    throw std::invalid_argument(std::string(function) + ": level " + std::to_string(level) +
                                " is not in (0, 1)");
  }
}

}  // namespace

double student_t_quantile(double p, double df) {
  if (std::isnan(p) || std::isnan(df) || p < 0.0 || p > 1.0 || df <= 0.0) return kNaN;
  if (p == 0.0) return -kInf;
  if (p == 1.0) return kInf;
  if (p == 0.5) return 0.0;
  if (p > 0.5) return t_upper_quantile(1.0 - p, df);
  return -t_upper_quantile(p, df);
}

Interval mean_ci(const std::vector<double>& values, double level) {
  check_level("mean_ci", level);
  Interval out;
  double sum = 0.0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++out.n;
  }
  if (out.n == 0) return Interval{kNaN, kNaN, kNaN, kNaN, 0};
  const double n = static_cast<double>(out.n);
  out.mean = sum / n;
  if (out.n == 1) {
    out.lower = out.upper = out.half_width = kNaN;
    return out;
  }
  // Two passes: summing squared deviations from the mean avoids the cancellation of the
  // sum-of-squares formula when the spread is small next to the mean (AUCs near 0.7 +- 0.01).
  double squared_deviations = 0.0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    squared_deviations += (v - out.mean) * (v - out.mean);
  }
  const double standard_error = std::sqrt(squared_deviations / (n - 1.0)) / std::sqrt(n);
  // The upper tail is passed directly so that 0.5 + level / 2 is never rounded.
  const double t = t_upper_quantile((1.0 - level) / 2.0, n - 1.0);
  out.half_width = t * standard_error;
  out.lower = out.mean - out.half_width;
  out.upper = out.mean + out.half_width;
  return out;
}

Interval paired_difference_ci(const std::vector<double>& a, const std::vector<double>& b,
                              double level) {
  check_level("paired_difference_ci", level);
  if (a.size() != b.size()) {
    throw DataError("paired_difference_ci: a has " + std::to_string(a.size()) +
                    " values but b has " + std::to_string(b.size()) +
                    " (the two methods must be scored on the same tasks)");
  }
  std::vector<double> differences;
  differences.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i])) differences.push_back(a[i] - b[i]);
  }
  return mean_ci(differences, level);
}

std::string format_interval(const Interval& interval, int digits) {
  digits = std::max(digits, 0);
  if (std::isnan(interval.mean)) return "n/a";
  const std::string half =
      std::isnan(interval.half_width) ? "n/a" : fixed(interval.half_width, digits);
  return fixed(interval.mean, digits) + " \u00b1 " + half;
}

std::string format_difference(const Interval& d, int digits) {
  auto signed_fixed = [&](double v) { return (v >= 0 ? "+" : "") + fixed(v, std::max(digits, 0)); };
  if (d.n == 0 || !std::isfinite(d.mean)) return "n/a";
  const std::string mean = signed_fixed(d.mean);
  if (!std::isfinite(d.half_width)) return mean + " [n/a]";
  return mean + " [" + signed_fixed(d.lower) + ", " + signed_fixed(d.upper) + "]";
}

}  // namespace ml::metrics
