// Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
// Networks", ICML, arXiv:1703.01365), the attribution method Captum implements for PyTorch, over
// any differentiable function of an input tensor. For a row x, a baseline x' and a scalar
// output F, the attribution of input element i is
//     IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da,
// the gradient averaged along the straight line from the baseline to the input. It satisfies
// completeness, sum_i IG_i(x) = F(x) - F(x') (the paper's Proposition 1), exactly for the
// integral and up to the quadrature error for its approximation here, which is what the
// per-row completeness gap measures; an element with x_i = x'_i, or one F does not depend on
// along the path, gets exactly 0 (the paper's sensitivity and dummy axioms).
//
// The integral is approximated by m-point Gauss-Legendre quadrature on [0, 1], Captum's default
// method ("gausslegendre", captum.attr._utils.approximation_methods): it integrates a
// polynomial of degree 2m - 1 exactly, so a smooth path (the transformer's GELU, softmax and
// layer norm) converges much faster than the paper's Riemann sum; a ReLU network's gradient is
// piecewise constant along the path and either rule converges like 1/m there. Every point of
// the path of a row is evaluated in batched forward and backward passes of at most `max_values`
// input values: several rows' whole paths, or one row's path in chunks of points, so memory
// stays bounded for any number of steps.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "explain/steps.hpp"

namespace ml::explain {

// The quadrature of the path integral: nodes a_k in (0, 1) and weights w_k summing to 1.
struct Quadrature {
  std::vector<double> nodes, weights;
};

// m-point Gauss-Legendre on [0, 1] (nodes by Newton's method on the Legendre polynomial P_m,
// to double precision). std::invalid_argument for m < 1 or m > kMaxSteps; checks for an
// interrupt (util/interrupt.hpp) every 256 points.
Quadrature gauss_legendre(int m);

// The explained output of path points: `points` [B, ...] (float64, the input's shape after
// its first dimension) and `rows` [B] int64, the input row each point lies on (the function
// may read per-row context by it: a text row's attention mask, the class explained). Returns
// [B], one scalar per point, differentiable with respect to `points`.
using RowFunction =
    std::function<torch::Tensor(const torch::Tensor& points, const torch::Tensor& rows)>;

struct Attributions {
  torch::Tensor attributions;     // input's shape [n, ...], float64: IG per input element
  torch::Tensor output;           // [n] F(x)
  torch::Tensor baseline_output;  // [n] F(x')
  // [n] |sum_i IG_i(x) - (F(x) - F(x'))|: the completeness gap, in F's units; 0 for the exact
  // integral, so it bounds what the quadrature left out.
  torch::Tensor gap;
};

// Input values held by one batched pass over the path points (steps x rows x values per row):
// 4M float64 values, 32 MiB, plus the function's activations.
inline constexpr std::int64_t kMaxPathValues = std::int64_t{1} << 22;

// Integrated Gradients of `f` at `input` [n, ...] against `baseline` (the same shape), with
// `steps` quadrature points. Both are used as float64 (the gap then measures the quadrature,
// not float32 rounding). `f` is evaluated without gradients for F(x) and F(x'), and with
// gradients with respect to the path points only. std::invalid_argument for steps outside
// [1, kMaxSteps] or shapes that differ; checks for an interrupt (util/interrupt.hpp) between
// passes.
Attributions integrated_gradients(const RowFunction& f, const torch::Tensor& input,
                                  const torch::Tensor& baseline, int steps,
                                  std::int64_t max_values = kMaxPathValues);

// Sums per-element attributions [n, ...] into segments: `segment` [n, E] (E = the values per
// row) gives each element's segment index in its row, -1 for none; the result is [n, segments],
// float64. What turns a feature's embedding dimensions or a token's into one attribution, which
// IG's linearity allows (completeness holds for the sums).
torch::Tensor sum_by_segment(const torch::Tensor& attributions, const torch::Tensor& segment,
                             std::int64_t segments);

}  // namespace ml::explain
