// Hand-written forward and backward of a task stack's dense layers: see dense_backprop.hpp.
#include "models/dense_backprop.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "models/blas.hpp"

namespace ml::models {
namespace {

// A parameter as raw memory: `stride` elements between tasks, 0 when it is shared.
template <typename S>
struct ParamView {
  S* data = nullptr;
  std::int64_t stride = 0;
  S* at(std::int64_t task) const { return data + task * stride; }
};

template <typename S>
ParamView<S> view(const torch::Tensor& t, std::int64_t shared_rank) {
  ParamView<S> v{t.data_ptr<S>(), 0};
  if (t.dim() > shared_rank) v.stride = t.numel() / t.size(0);
  return v;
}

// The loss's gradient at the outputs of one task (n rows, c outputs) in place of the outputs,
// each row weighed by its share of the task's mean; returns the task's mean loss.
template <typename S>
double loss_gradient(S* out, std::int64_t n, std::int64_t c, tasks::LabelKind kind, const S* target,
                     const std::int64_t* classes, const S* weight, double count) {
  double loss = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    const double share = (weight ? static_cast<double>(weight[r]) : 1.0) / count;
    S* o = out + r * c;
    double row_loss = 0;
    switch (kind) {
      case tasks::LabelKind::kBinary: {
        const double x = o[0], y = target[r];
        row_loss = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
        o[0] = static_cast<S>((1.0 / (1.0 + std::exp(-x)) - y) * share);
        break;
      }
      case tasks::LabelKind::kRegression: {
        const double diff = static_cast<double>(o[0]) - static_cast<double>(target[r]);
        row_loss = diff * diff;
        o[0] = static_cast<S>(2.0 * diff * share);
        break;
      }
      case tasks::LabelKind::kMulticlass: {
        const std::int64_t y = classes[r];
        if (y < 0 || y >= c)
          throw std::invalid_argument("dense_pass: class index " + std::to_string(y) +
                                      " outside the head's " + std::to_string(c) + " outputs");
        double top = o[0];
        for (std::int64_t k = 1; k < c; ++k) top = std::max(top, static_cast<double>(o[k]));
        double total = 0;
        for (std::int64_t k = 0; k < c; ++k) total += std::exp(static_cast<double>(o[k]) - top);
        const double log_sum = top + std::log(total);
        row_loss = log_sum - static_cast<double>(o[y]);
        for (std::int64_t k = 0; k < c; ++k)
          o[k] = static_cast<S>((std::exp(static_cast<double>(o[k]) - log_sum) - (k == y)) * share);
        break;
      }
    }
    loss += row_loss * share;
  }
  return loss;
}

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

  // Activations after each layer (ReLU applied; the last holds the outputs, then their
  // gradient) and two gradient buffers, reused by every task.
  std::vector<std::vector<S>> act(L + 1);
  int widest = 0;
  for (std::size_t l = 1; l <= L; ++l) {
    act[l].resize(static_cast<std::size_t>(n * width[l]));
    widest = std::max(widest, width[l]);
  }
  for (std::size_t l = 0; l < L; ++l) widest = std::max(widest, width[l]);
  std::vector<S> grad_a(static_cast<std::size_t>(n * widest)),
      grad_b(static_cast<std::size_t>(n * widest));

  const torch::Tensor target = kind == tasks::LabelKind::kMulticlass
                                   ? batch.target.to(torch::kInt64).contiguous()
                                   : batch.target.to(x0.scalar_type()).contiguous();
  const torch::Tensor weight =
      batch.padded ? batch.weight.to(x0.scalar_type()).contiguous() : torch::Tensor();
  const torch::Tensor count =
      batch.padded ? batch.count.to(torch::kDouble).contiguous() : torch::Tensor();
  const S* x_data = x0.data_ptr<S>();
  const bool ranged = !plan.rows.empty();
  if (ranged && static_cast<std::int64_t>(plan.rows.size()) != T)
    throw std::invalid_argument("dense_pass: one row range per task expected");
  const S one = 1, zero = 0;
  double loss = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    // The task's rows: all n (padding weighs 0), or its range, all real.
    const std::int64_t first = ranged ? plan.rows[static_cast<std::size_t>(t)].first : 0;
    const std::int64_t m = ranged ? plan.rows[static_cast<std::size_t>(t)].second : n;
    if (first < 0 || m < 1 || first + m > n)
      throw std::invalid_argument("dense_pass: a row range outside the task's rows");
    const int rows = static_cast<int>(m);
    const S* task_input = x_data + (t * n + first) * width[0];
    const S* input = task_input;
    for (std::size_t l = 0; l < L; ++l) {
      S* out = act[l + 1].data();
      const S* bias = b[l].at(t);
      for (std::int64_t r = 0; r < m; ++r)
        std::copy(bias, bias + width[l + 1], out + r * width[l + 1]);
      // out [n, out] += input [n, in] · W [out, in]ᵀ, in BLAS's column-major terms.
      blas::gemm("T", "N", &width[l + 1], &rows, &width[l], &one, w[l].at(t), &width[l], input,
                 &width[l], &one, out, &width[l + 1]);
      if (l + 1 < L)
        for (std::int64_t k = 0; k < m * width[l + 1]; ++k) out[k] = std::max(out[k], zero);
      input = out;
    }
    const S* task_target =
        kind == tasks::LabelKind::kMulticlass ? nullptr : target.data_ptr<S>() + t * n + first;
    const std::int64_t* task_classes = kind == tasks::LabelKind::kMulticlass
                                           ? target.data_ptr<std::int64_t>() + t * n + first
                                           : nullptr;
    const bool weighed = batch.padded && !ranged;
    const S* task_weight = weighed ? weight.data_ptr<S>() + t * n : nullptr;
    const double task_count = weighed ? count.data_ptr<double>()[t] : static_cast<double>(m);
    loss += loss_gradient(act[L].data(), m, width[L], kind, task_target, task_classes, task_weight,
                          task_count);
    if (lowest == L) continue;

    // delta: the loss gradient at layer l's outputs [n, out]; its input's is written to `next`.
    S* delta = act[L].data();
    S* next = grad_a.data();
    for (std::size_t l = L; l-- > lowest;) {
      const S* in = l == 0 ? task_input : act[l].data();
      if (l > lowest) {
        // The gradient at the layer's input, with the weights before this step's update.
        blas::gemm("N", "N", &width[l], &rows, &width[l + 1], &one, w[l].at(t), &width[l], delta,
                   &width[l + 1], &zero, next, &width[l]);
        const S* a = act[l].data();
        // ReLU's gradient, branch-free so that it vectorises (a branch per element mispredicts
        // on about half of them).
        for (std::int64_t k = 0; k < m * width[l]; ++k) next[k] = a[k] > zero ? next[k] : zero;
      }
      for (std::size_t e : {2 * l, 2 * l + 1}) {
        const GradientUse use = plan.use[e];
        if (use == GradientUse::kIgnore) continue;
        const bool step = use == GradientUse::kSgdStep;
        const S alpha = static_cast<S>(step ? -plan.lr : plan.scale);
        if (e % 2 == 0) {
          // W [out, in] += alpha · delta [n, out]ᵀ · input [n, in]
          S* target_w = step ? w[l].at(t) : w_sum[l].data;
          blas::gemm("N", "T", &width[l], &width[l + 1], &rows, &alpha, in, &width[l], delta,
                     &width[l + 1], &one, target_w, &width[l]);
        } else {
          S* target_b = step ? b[l].at(t) : b_sum[l].data;
          for (std::int64_t r = 0; r < m; ++r)
            for (int k = 0; k < width[l + 1]; ++k)
              target_b[k] += alpha * delta[r * width[l + 1] + k];
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

}  // namespace ml::models
