// Integrated Gradients with Gauss-Legendre quadrature: see integrated_gradients.hpp.
#include "explain/integrated_gradients.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "util/interrupt.hpp"

namespace ml::explain {

Quadrature gauss_legendre(int m) {
  if (m < 1 || m > kMaxSteps)
    throw std::invalid_argument("gauss_legendre: " + std::to_string(m) + " points");
  Quadrature q;
  q.nodes.resize(static_cast<std::size_t>(m));
  q.weights.resize(static_cast<std::size_t>(m));
  const double pi = std::acos(-1.0);
  for (int i = 0; i < m; ++i) {
    // O(m) per root: thousands of points take a while, so an interrupt is heard.
    if (i % 256 == 255) throw_if_interrupted("computing the quadrature");
    // The i-th root of P_m on [-1, 1], from the classic starting guess (Abramowitz & Stegun
    // 22.16.6); Newton's method converges in a few steps from it.
    double x = std::cos(pi * (i + 0.75) / (m + 0.5));
    double derivative = 1;
    for (int iteration = 0; iteration < 100; ++iteration) {
      double p0 = 1, p1 = x;  // P_0, P_1; the recurrence gives P_m
      for (int k = 2; k <= m; ++k) {
        const double p2 = ((2.0 * k - 1) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      const double pm = m == 1 ? x : p1, pm1 = m == 1 ? 1.0 : p0;
      derivative = m * (x * pm - pm1) / (x * x - 1);
      const double step = pm / derivative;
      x -= step;
      if (std::abs(step) < 1e-15) break;
    }
    // Mapped from [-1, 1] to [0, 1]: a = (1 + x) / 2, weight halved so that they sum to 1.
    const auto k = static_cast<std::size_t>(m - 1 - i);  // ascending nodes
    q.nodes[k] = (1 + x) / 2;
    q.weights[k] = 1 / ((1 - x * x) * derivative * derivative);
  }
  return q;
}

Attributions integrated_gradients(const RowFunction& f, const torch::Tensor& input_in,
                                  const torch::Tensor& baseline_in, int steps,
                                  std::int64_t max_values) {
  if (steps < 1 || steps > kMaxSteps)
    throw std::invalid_argument("integrated_gradients: " + std::to_string(steps) + " steps");
  if (!input_in.sizes().equals(baseline_in.sizes()) || input_in.dim() < 1)
    throw std::invalid_argument("integrated_gradients: the input and the baseline differ in shape");
  const torch::Tensor input = input_in.detach().to(torch::kFloat64);
  const torch::Tensor baseline = baseline_in.detach().to(torch::kFloat64);
  const std::int64_t n = input.size(0);
  const std::int64_t per_row = n == 0 ? 0 : input.numel() / n;
  const Quadrature q = gauss_legendre(steps);
  const auto index_options = torch::TensorOptions().dtype(torch::kInt64).device(input.device());
  const auto value_options = torch::TensorOptions().dtype(torch::kFloat64).device(input.device());
  const torch::Tensor nodes = torch::tensor(q.nodes, value_options);
  const torch::Tensor weights = torch::tensor(q.weights, value_options);

  Attributions a;
  a.attributions = torch::zeros_like(input);
  a.output = torch::zeros({n}, value_options);
  a.baseline_output = torch::zeros({n}, value_options);
  // A pass holds rows x steps path points of per_row values each: whole rows' paths while they
  // fit, else one row's path in chunks of steps (its weighted gradients summed over the chunks).
  const std::int64_t values_per_point = std::max<std::int64_t>(1, per_row);
  const std::int64_t rows_per_pass =
      std::max<std::int64_t>(1, max_values / (values_per_point * steps));
  for (std::int64_t lo = 0; lo < n; lo += rows_per_pass) {
    throw_if_interrupted("explaining");
    const std::int64_t hi = std::min(n, lo + rows_per_pass), k = hi - lo;
    const torch::Tensor x = input.narrow(0, lo, k), base = baseline.narrow(0, lo, k);
    const torch::Tensor rows = torch::arange(lo, hi, index_options);
    {
      torch::NoGradGuard no_grad;
      a.output.narrow(0, lo, k).copy_(f(x, rows).reshape({k}));
      a.baseline_output.narrow(0, lo, k).copy_(f(base, rows).reshape({k}));
    }
    const torch::Tensor difference = x - base;
    const std::int64_t steps_per_pass = std::clamp<std::int64_t>(
        max_values / (values_per_point * k), 1, static_cast<std::int64_t>(steps));
    torch::Tensor mean_gradient = torch::zeros_like(x);
    for (std::int64_t first = 0; first < steps; first += steps_per_pass) {
      if (first > 0) throw_if_interrupted("explaining");
      const std::int64_t m = std::min<std::int64_t>(steps_per_pass, steps - first);
      // Shapes for broadcasting a node or weight over a row's values: [m, 1, 1, ...].
      std::vector<std::int64_t> along(static_cast<std::size_t>(input.dim()) + 1, 1);
      along[0] = m;
      const torch::Tensor node = nodes.narrow(0, first, m).view(along);
      // Point j of row i is at flattened index j * k + i: [m, k, ...] -> [m * k, ...].
      std::vector<std::int64_t> flat = input.sizes().vec();
      flat[0] = m * k;
      torch::Tensor points = (base.unsqueeze(0) + node * difference.unsqueeze(0))
                                 .reshape(flat)
                                 .detach()
                                 .requires_grad_(true);
      const torch::Tensor point_rows = rows.repeat({m});
      torch::Tensor out;
      {
        torch::AutoGradMode grad(true);
        out = f(points, point_rows).reshape({m * k});
      }
      // Rows do not interact, so the gradient of the sum is every point's own gradient.
      // A function that does not read its input at all has no gradient: it adds 0.
      if (!out.requires_grad()) continue;
      const torch::Tensor gradient =
          torch::autograd::grad({out.sum()}, {points}, {}, false, false, /*allow_unused=*/true)[0];
      if (!gradient.defined()) continue;
      std::vector<std::int64_t> stacked = input.sizes().vec();
      stacked[0] = k;
      stacked.insert(stacked.begin(), m);
      mean_gradient += (gradient.view(stacked) * weights.narrow(0, first, m).view(along)).sum(0);
    }
    a.attributions.narrow(0, lo, k).copy_(difference * mean_gradient);
  }
  const torch::Tensor total = n == 0 ? a.output : a.attributions.reshape({n, per_row}).sum(1);
  a.gap = (total - (a.output - a.baseline_output)).abs();
  return a;
}

torch::Tensor sum_by_segment(const torch::Tensor& attributions, const torch::Tensor& segment,
                             std::int64_t segments) {
  const std::int64_t n = attributions.size(0);
  const torch::Tensor values = attributions.reshape({n, -1}).to(torch::kFloat64);
  if (!segment.sizes().equals(values.sizes()))
    throw std::invalid_argument("sum_by_segment: the segment map's shape differs");
  // Elements of no segment go to an extra column that is dropped.
  const torch::Tensor index =
      torch::where(segment >= 0, segment, torch::full_like(segment, segments));
  torch::Tensor sums = torch::zeros({n, segments + 1}, values.options());
  sums.scatter_add_(1, index.to(torch::kInt64), values);
  return sums.narrow(1, 0, segments);
}

}  // namespace ml::explain
