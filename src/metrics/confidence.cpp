// Student t quantiles (without Boost) and the mean / paired-difference intervals built on them.
#include "metrics/confidence.hpp"

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

// Continued fraction of the regularized incomplete beta function (modified Lentz), the form
// that converges fast for x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  constexpr int kMaxIterations = 10000;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < kEps) break;
  }
  return h;
}

// I_x(a, b), with y = 1 - x and both logarithms passed separately: the t tail needs x close to
// 1 near t = 0, where forming 1 - x would cancel away the digits that matter, and x below the
// smallest double far in the tail of small df, where only log x is representable.
double regularized_incomplete_beta(double a, double b, double x, double y, double log_x,
                                   double log_y) {
  if (y <= 0.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * log_x + b * log_y;
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, y) / b;
}

// P(T > t) for t >= 0.
double t_upper_tail(double t, double df) {
  if (std::isinf(df)) return 0.5 * std::erfc(t / std::sqrt(2.0));
  // x = df / (df + t^2), written through r = sqrt(df) / t in the far tail so that t^2 cannot
  // overflow nor x underflow (small df puts extreme quantiles beyond 1e154).
  if (t * t <= df) {
    const double x = df / (df + t * t), y = t * t / (df + t * t);
    return 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, x, y, std::log(x), std::log(y));
  }
  const double r = std::sqrt(df) / t;
  const double log1p_r2 = std::log1p(r * r);
  return 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, r * r / (1.0 + r * r),
                                           1.0 / (1.0 + r * r), 2.0 * std::log(r) - log1p_r2,
                                           -log1p_r2);
}

// The t >= 0 with P(T > t) = q, for q in (0, 0.5]. Bisection: the tail is monotone, so this
// cannot fail to converge the way Newton can in the heavy tails of small df.
double t_upper_quantile(double q, double df) {
  // lgamma loses absolute precision for huge arguments, while the t is then normal to within
  // the Cornish-Fisher correction below, whose next term is O(1/df^3).
  if (!std::isinf(df) && df > 1e5) {
    const double z = t_upper_quantile(q, kInf);
    const double z3 = z * z * z, z5 = z3 * z * z;
    return z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df);
  }
  double lo = 0.0, hi = 1.0;
  while (t_upper_tail(hi, df) > q) {
    lo = hi;
    hi *= 2.0;
    if (std::isinf(hi)) return kInf;
  }
  for (int i = 0; i < 300 && hi - lo > 1e-13 * std::max(1.0, hi); ++i) {
    const double mid = lo + (hi - lo) / 2.0;
    if (t_upper_tail(mid, df) > q) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo + (hi - lo) / 2.0;
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
