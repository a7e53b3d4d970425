// The per-task building blocks of the hand-written dense passes (dense_backprop.cpp's first-order
// pass and dense_second_order.cpp's second-order meta-gradient): parameters as raw memory, one
// task's forward through ReLU layers, and the task loss's gradient and curvature at the outputs.
// Internal to src/models: the public interfaces are dense_backprop.hpp and dense_second_order.hpp.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/blas.hpp"
#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::models::dense {

// A parameter as raw memory: `stride` elements between tasks, 0 when it is shared.
template <typename S>
struct ParamView {
  S* data = nullptr;
  std::int64_t stride = 0;
  S* at(std::int64_t task) const { return data + task * stride; }
};

// `t` viewed per task when it has more than `shared_rank` dimensions (a leading task one).
template <typename S>
ParamView<S> view(const torch::Tensor& t, std::int64_t shared_rank) {
  ParamView<S> v{t.data_ptr<S>(), 0};
  if (t.dim() > shared_rank) v.stride = t.numel() / t.size(0);
  return v;
}

// What the loss's second derivative at the outputs needs, per row: the row's share of the task's
// mean (weight / count; 0 for padding) and, for binary and multiclass heads, the predicted
// probabilities (sigmoid(o) [n], softmax(o) [n, c]).
template <typename S>
struct LossCurvature {
  std::vector<double> share;
  std::vector<S> prob;
};

// The loss's gradient at the outputs of one task (n rows, c outputs) in place of the outputs,
// each row weighed by its share of the task's mean; returns the task's mean loss. With
// `curvature`, also records what loss_hessian_product() needs. Losses and gradients as
// dense_backprop.hpp lists them.
template <typename S>
double loss_gradient(S* out, std::int64_t n, std::int64_t c, tasks::LabelKind kind, const S* target,
                     const std::int64_t* classes, const S* weight, double count,
                     LossCurvature<S>* curvature = nullptr) {
  if (curvature) {
    curvature->share.resize(static_cast<std::size_t>(n));
    curvature->prob.resize(static_cast<std::size_t>(n * c));
  }
  double loss = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    const double share = (weight ? static_cast<double>(weight[r]) : 1.0) / count;
    if (curvature) curvature->share[static_cast<std::size_t>(r)] = share;
    S* o = out + r * c;
    double row_loss = 0;
    switch (kind) {
      case tasks::LabelKind::kBinary: {
        const double x = o[0], y = target[r];
        row_loss = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
        const double p = 1.0 / (1.0 + std::exp(-x));
        if (curvature) curvature->prob[static_cast<std::size_t>(r)] = static_cast<S>(p);
        o[0] = static_cast<S>((p - y) * share);
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
        for (std::int64_t k = 0; k < c; ++k) {
          const double p = std::exp(static_cast<double>(o[k]) - log_sum);
          if (curvature) curvature->prob[static_cast<std::size_t>(r * c + k)] = static_cast<S>(p);
          o[k] = static_cast<S>((p - (k == y)) * share);
        }
        break;
      }
    }
    loss += row_loss * share;
  }
  return loss;
}

// The loss's Hessian at the outputs times `r` [n, c], in place: the change of the output
// gradient when the outputs change by r (Pearlmutter 1994's R-operator at the loss). Per row,
// with s its share: binary s·p(1-p)·r; regression 2s·r; multiclass s·(p ⊙ r - p (pᵀr)).
template <typename S>
void loss_hessian_product(S* r, std::int64_t n, std::int64_t c, tasks::LabelKind kind,
                          const LossCurvature<S>& curvature) {
  for (std::int64_t row = 0; row < n; ++row) {
    const double share = curvature.share[static_cast<std::size_t>(row)];
    S* x = r + row * c;
    switch (kind) {
      case tasks::LabelKind::kBinary: {
        const double p = curvature.prob[static_cast<std::size_t>(row)];
        x[0] = static_cast<S>(share * p * (1 - p) * x[0]);
        break;
      }
      case tasks::LabelKind::kRegression:
        x[0] = static_cast<S>(2 * share * x[0]);
        break;
      case tasks::LabelKind::kMulticlass: {
        const S* p = curvature.prob.data() + row * c;
        double mean = 0;
        for (std::int64_t k = 0; k < c; ++k) mean += static_cast<double>(p[k]) * x[k];
        for (std::int64_t k = 0; k < c; ++k) x[k] = static_cast<S>(share * p[k] * (x[k] - mean));
        break;
      }
    }
  }
}

// A stack's targets and padding weights as raw memory, for loss_gradient() task by task.
template <typename S>
class StackTargets {
 public:
  StackTargets(const StackedBatch& batch, tasks::LabelKind kind, torch::ScalarType dtype)
      : kind_(kind), n_(batch.target.size(1)) {
    target_ = kind == tasks::LabelKind::kMulticlass ? batch.target.to(torch::kInt64).contiguous()
                                                    : batch.target.to(dtype).contiguous();
    if (batch.padded) {
      weight_ = batch.weight.to(dtype).contiguous();
      count_ = batch.count.to(torch::kDouble).contiguous();
    }
  }
  // Task t's targets from its row `first` on (regression and binary heads; else nullptr).
  const S* target(std::int64_t t, std::int64_t first = 0) const {
    return kind_ == tasks::LabelKind::kMulticlass ? nullptr
                                                  : target_.data_ptr<S>() + t * n_ + first;
  }
  // Task t's class indices from its row `first` on (multiclass heads; else nullptr).
  const std::int64_t* classes(std::int64_t t, std::int64_t first = 0) const {
    return kind_ == tasks::LabelKind::kMulticlass
               ? target_.data_ptr<std::int64_t>() + t * n_ + first
               : nullptr;
  }
  // Task t's padding weights over all its rows (nullptr when nothing is padded).
  const S* weight(std::int64_t t) const {
    return weight_.defined() ? weight_.data_ptr<S>() + t * n_ : nullptr;
  }
  // How many of task t's n rows are real (n when nothing is padded).
  double count(std::int64_t t) const {
    return count_.defined() ? count_.data_ptr<double>()[t] : static_cast<double>(n_);
  }

 private:
  tasks::LabelKind kind_;
  std::int64_t n_;
  torch::Tensor target_, weight_, count_;
};

// One task's forward pass through the dense layers from layer `first` on: act[l + 1]
// [rows, width[l + 1]] = layer l's output from `input` [rows, width[first]] (ReLU after every
// layer but the last, whose outputs act[L] are left raw). w[l] [out, in] and b[l] [out]
// row-major.
template <typename S>
void forward_rows(const S* input, int rows, const std::vector<int>& width,
                  const std::vector<const S*>& w, const std::vector<const S*>& b,
                  const std::vector<S*>& act, std::size_t first = 0) {
  const std::size_t L = w.size();
  const S one = 1, zero = 0;
  for (std::size_t l = first; l < L; ++l) {
    S* out = act[l + 1];
    for (int r = 0; r < rows; ++r) std::copy(b[l], b[l] + width[l + 1], out + r * width[l + 1]);
    // out [n, out] += input [n, in] · W [out, in]ᵀ, in BLAS's column-major terms.
    blas::gemm("T", "N", &width[l + 1], &rows, &width[l], &one, w[l], &width[l], input, &width[l],
               &one, out, &width[l + 1]);
    if (l + 1 < L)
      for (std::int64_t k = 0; k < static_cast<std::int64_t>(rows) * width[l + 1]; ++k)
        out[k] = std::max(out[k], zero);
    input = out;
  }
}

// next [rows, in] = alpha · delta [rows, out] · W [out, in] + beta · next.
template <typename S>
void input_product(const S* w, const S* delta, int rows, int in, int out, S beta, S* next,
                   S alpha = 1) {
  blas::gemm("N", "N", &in, &rows, &out, &alpha, w, &in, delta, &out, &beta, next, &in);
}

// x [count] ⊙= [a > 0]: ReLU's gradient, a being the ReLU's output. Branch-free, so that it
// vectorises (a branch per element mispredicts on about half of them).
template <typename S>
void relu_gradient(S* x, const S* a, std::int64_t count) {
  const S zero = 0;
  for (std::int64_t k = 0; k < count; ++k) x[k] = a[k] > zero ? x[k] : zero;
}

// W [out, in] = alpha · delta [rows, out]ᵀ · input [rows, in] + beta · W.
template <typename S>
void weight_gradient(const S* delta, const S* input, int rows, int in, int out, S alpha, S beta,
                     S* w) {
  blas::gemm("N", "T", &in, &out, &rows, &alpha, input, &in, delta, &out, &beta, w, &in);
}

// b [out] += alpha · Σ_rows delta [rows, out].
template <typename S>
void bias_gradient(const S* delta, int rows, int out, S alpha, S* b) {
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < out; ++k) b[k] += alpha * delta[r * out + k];
}

}  // namespace ml::models::dense
