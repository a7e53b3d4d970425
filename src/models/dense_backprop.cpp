// Hand-written forward and backward of a task stack's dense layers: see dense_backprop.hpp.
#include "models/dense_backprop.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "models/dense_kernels.hpp"

namespace ml::models {
namespace {

using dense::ParamView;
using dense::view;

template <typename S>
double run(const torch::Tensor& x0, const std::vector<torch::Tensor>& layers,
           const StackedBatch& batch, tasks::LabelKind kind, DensePassPlan& plan) {
  const std::int64_t T = x0.size(0), n = x0.size(1);
  const std::size_t L = layers.size() / 2;
  std::vector<int> width(L + 1);
  width[0] = static_cast<int>(x0.size(2));
  std::vector<ParamView<S>> w(L), b(L), w_sum(L), b_sum(L);
  for (std::size_t l = 0; l < L; ++l) {
    w[l] = view<S>(layers[2 * l], 2);
    b[l] = view<S>(layers[2 * l + 1], 1);
    width[l + 1] = static_cast<int>(layers[2 * l + 1].size(-1));
    for (std::size_t e : {2 * l, 2 * l + 1}) {
      const GradientUse use = plan.use[e];
      if (use == GradientUse::kSgdStep && layers[e].dim() == (e % 2 == 0 ? 2 : 1))
        throw std::invalid_argument("dense_pass: an SGD step needs per-task parameters");
      if (use == GradientUse::kSumOverTasks) {
        const torch::Tensor& sum = plan.sums.at(e);
        const std::int64_t shared_rank = e % 2 == 0 ? 2 : 1;
        const auto own_shape =
            layers[e].sizes().slice(static_cast<std::size_t>(layers[e].dim() - shared_rank));
        if (!sum.defined() || !sum.is_contiguous() || sum.sizes() != own_shape ||
            sum.scalar_type() != layers[e].scalar_type())
          throw std::invalid_argument("dense_pass: a gradient sum of the wrong shape or dtype");
        (e % 2 == 0 ? w_sum[l] : b_sum[l]) = ParamView<S>{sum.data_ptr<S>(), 0};
      }
    }
  }
  std::size_t lowest = L;  // the lowest layer whose gradient is needed
  for (std::size_t e = 0; e < layers.size(); ++e)
    if (plan.use[e] != GradientUse::kIgnore) lowest = std::min(lowest, e / 2);

  const bool ranged = !plan.rows.empty();
  if (ranged && static_cast<std::int64_t>(plan.rows.size()) != T)
    throw std::invalid_argument("dense_pass: one row range per task expected");
  // The most rows one task's pass uses: a step on row ranges (Reptile's walk) reads a few of
  // the stack's rows, and zero-filling buffers for all of them was ~1% of its meta-step.
  std::int64_t most_rows = ranged ? 0 : n;
  for (const auto& range : plan.rows) most_rows = std::max(most_rows, range.second);
  most_rows = std::min(most_rows, n);
  // Activations after each layer (ReLU applied; the last holds the outputs, then their
  // gradient) and two gradient buffers, reused by every task.
  std::vector<std::vector<S>> act(L + 1);
  int widest = 0;
  for (std::size_t l = 1; l <= L; ++l) {
    act[l].resize(static_cast<std::size_t>(most_rows * width[l]));
    widest = std::max(widest, width[l]);
  }
  for (std::size_t l = 0; l < L; ++l) widest = std::max(widest, width[l]);
  std::vector<S> grad_a(static_cast<std::size_t>(most_rows * widest)),
      grad_b(static_cast<std::size_t>(most_rows * widest));

  const dense::StackTargets<S> targets(batch, kind, x0.scalar_type());
  const S* x_data = x0.data_ptr<S>();
  const S one = 1, zero = 0;
  std::vector<const S*> task_w(L), task_b(L);
  std::vector<S*> task_act(L + 1);
  double loss = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    // The task's rows: all n (padding weighs 0), or its range, all real.
    const std::int64_t first = ranged ? plan.rows[static_cast<std::size_t>(t)].first : 0;
    const std::int64_t m = ranged ? plan.rows[static_cast<std::size_t>(t)].second : n;
    if (first < 0 || m < 1 || first + m > n)
      throw std::invalid_argument("dense_pass: a row range outside the task's rows");
    const int rows = static_cast<int>(m);
    const S* task_input = x_data + (t * n + first) * width[0];
    for (std::size_t l = 0; l < L; ++l) {
      task_w[l] = w[l].at(t);
      task_b[l] = b[l].at(t);
      task_act[l + 1] = act[l + 1].data();
    }
    dense::forward_rows(task_input, rows, width, task_w, task_b, task_act);
    const bool weighed = batch.padded && !ranged;
    loss += dense::loss_gradient(act[L].data(), m, width[L], kind, targets.target(t, first),
                                 targets.classes(t, first), weighed ? targets.weight(t) : nullptr,
                                 weighed ? targets.count(t) : static_cast<double>(m));
    if (lowest == L) continue;

    // delta: the loss gradient at layer l's outputs [n, out]; its input's is written to `next`.
    S* delta = act[L].data();
    S* next = grad_a.data();
    for (std::size_t l = L; l-- > lowest;) {
      const S* in = l == 0 ? task_input : act[l].data();
      if (l > lowest) {
        // The gradient at the layer's input, with the weights before this step's update.
        dense::input_product(w[l].at(t), delta, rows, width[l], width[l + 1], zero, next);
        dense::relu_gradient(next, act[l].data(), m * width[l]);
      }
      for (std::size_t e : {2 * l, 2 * l + 1}) {
        const GradientUse use = plan.use[e];
        if (use == GradientUse::kIgnore) continue;
        const bool step = use == GradientUse::kSgdStep;
        const S alpha = static_cast<S>(step ? -plan.lr : plan.scale);
        if (e % 2 == 0) {
          dense::weight_gradient(delta, in, rows, width[l], width[l + 1], alpha, one,
                                 step ? w[l].at(t) : w_sum[l].data);
        } else {
          dense::bias_gradient(delta, rows, width[l + 1], alpha, step ? b[l].at(t) : b_sum[l].data);
        }
      }
      delta = next;
      next = next == grad_a.data() ? grad_b.data() : grad_a.data();
    }
  }
  return loss;
}

}  // namespace

bool dense_pass_supports(const torch::Tensor& x0, const std::vector<torch::Tensor>& layers) {
  if (!x0.defined() || x0.dim() != 3 || !x0.device().is_cpu() || !x0.is_contiguous()) return false;
  if (x0.scalar_type() != torch::kFloat32 && x0.scalar_type() != torch::kFloat64) return false;
  if (layers.empty() || layers.size() % 2 != 0) return false;
  const std::int64_t T = x0.size(0);
  std::int64_t in = x0.size(2);
  for (std::size_t e = 0; e < layers.size(); e += 2) {
    const torch::Tensor &w = layers[e], &b = layers[e + 1];
    for (const torch::Tensor* p : {&w, &b})
      if (!p->defined() || !p->device().is_cpu() || !p->is_contiguous() ||
          p->scalar_type() != x0.scalar_type())
        return false;
    const bool w_per_task = w.dim() == 3, b_per_task = b.dim() == 2;
    if ((w_per_task && w.size(0) != T) || (!w_per_task && w.dim() != 2)) return false;
    if ((b_per_task && b.size(0) != T) || (!b_per_task && b.dim() != 1)) return false;
    const std::int64_t out = w.size(-2);
    if (w.size(-1) != in || b.size(-1) != out) return false;
    in = out;
  }
  return true;
}

double dense_pass(const torch::Tensor& x0, const std::vector<torch::Tensor>& layers,
                  const StackedBatch& batch, tasks::LabelKind kind, DensePassPlan& plan) {
  if (!dense_pass_supports(x0, layers))
    throw std::invalid_argument("dense_pass: unsupported tensors (CPU, contiguous, one dtype)");
  if (plan.use.size() != layers.size())
    throw std::invalid_argument("dense_pass: one GradientUse per layer tensor expected");
  if (plan.sums.size() < layers.size()) plan.sums.resize(layers.size());
  torch::NoGradGuard no_grad;
  if (x0.scalar_type() == torch::kFloat64) return run<double>(x0, layers, batch, kind, plan);
  return run<float>(x0, layers, batch, kind, plan);
}

bool task_move_sum_supports(const torch::Tensor& start, const torch::Tensor& ends) {
  return start.device().is_cpu() && ends.device().is_cpu() && start.is_contiguous() &&
         ends.is_contiguous() && start.scalar_type() == ends.scalar_type() &&
         (start.scalar_type() == torch::kFloat32 || start.scalar_type() == torch::kFloat64) &&
         ends.dim() == start.dim() + 1 && ends.sizes().slice(1) == start.sizes();
}

torch::Tensor task_move_sum(const torch::Tensor& start, const torch::Tensor& ends, double scale) {
  if (!task_move_sum_supports(start, ends))
    throw std::invalid_argument(
        "task_move_sum: CPU contiguous float or double tensors, ends [T, start's shape]");
  torch::Tensor sum = torch::zeros_like(start);
  AT_DISPATCH_FLOATING_TYPES(start.scalar_type(), "task_move_sum", [&] {
    const std::int64_t n = start.numel(), T = ends.size(0);
    const scalar_t* __restrict__ from = start.data_ptr<scalar_t>();
    const scalar_t* __restrict__ to = ends.data_ptr<scalar_t>();
    scalar_t* __restrict__ out = sum.data_ptr<scalar_t>();
    const auto factor = static_cast<scalar_t>(scale);
    for (std::int64_t t = 0; t < T; ++t, to += n)
      for (std::int64_t k = 0; k < n; ++k) out[k] += (from[k] - to[k]) * factor;
  });
  return sum;
}

}  // namespace ml::models
