// Second-order MAML's meta-gradient through dense layers, by hand: see dense_second_order.hpp.
#include "models/dense_second_order.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "models/dense_backprop.hpp"
#include "models/dense_kernels.hpp"

namespace ml::models {
namespace {

// Meta-SGD at step s, for one tensor of `size` elements: the direction u = λ ⊙ v_{s+1}, and the
// rates' meta-gradient, scale · (-g_s ⊙ v_{s+1}), added to `rate_sum`.
template <typename S>
void rates_step(const S* v, const S* rate, const S* g, std::int64_t size, S scale, S* u,
                S* rate_sum) {
  for (std::int64_t k = 0; k < size; ++k) {
    u[k] = rate[k] * v[k];
    rate_sum[k] -= scale * g[k] * v[k];
  }
}

// One meta-batch's second-order pass: buffers sized once, then task after task.
template <typename S>
class SecondOrderPass {
 public:
  SecondOrderPass(const torch::Tensor& support_x, const StackedBatch& support,
                  const torch::Tensor& query_x, const StackedBatch& query,
                  const std::vector<torch::Tensor>& layers, tasks::LabelKind kind,
                  SecondOrderPlan& plan);

  // Task t's walk forward through its inner steps, its query gradient and the walk back; adds its
  // meta-gradient into the plan's sums and returns its mean query loss.
  double task(std::int64_t t);

 private:
  S* w_at(std::size_t j, int s) {
    return adapt_w_[j] ? w_steps_[j].data() + s * w_size_[j] : const_cast<S*>(shared_w_[j]);
  }
  S* b_at(std::size_t j, int s) {
    return adapt_b_[j] ? b_steps_[j].data() + s * width_[j + 1] : const_cast<S*>(shared_b_[j]);
  }
  // Layers below the lowest that adapts compute the same outputs at every step: step 0's serve.
  S* act_at(int s, std::size_t j) {
    return j < lowest_adapted_ ? act_[0][j].data() : act_[s][j].data();
  }
  S* delta_at(int s, std::size_t j) {
    return j + 1 == L_ ? act_[s][j].data() : delta_[s][j].data();
  }
  // The direction of the Hessian-vector products: M v (MAML), λ ⊙ M v (Meta-SGD).
  const S* dir_w(std::size_t j) const { return per_element_ ? u_w_[j].data() : v_w_[j].data(); }
  const S* dir_b(std::size_t j) const { return per_element_ ? u_b_[j].data() : v_b_[j].data(); }
  void set_weights(int s) {
    for (std::size_t j = 0; j < L_; ++j) {
      step_w_[j] = w_at(j, s);
      step_b_[j] = b_at(j, s);
    }
  }
  std::int64_t cells(int rows, std::size_t j) const {
    return static_cast<std::int64_t>(rows) * width_[j];
  }

  void inner_step(std::int64_t t, const S* xs, int s);
  double query_gradient(std::int64_t t, const S* xq);
  void back_through_step(std::int64_t t, const S* xs, int s);

  const tasks::LabelKind kind_;
  const int ns_, nq_;
  const std::size_t L_;
  const S one_ = 1, zero_ = 0;
  // Meta-SGD: per-element rates λ; the step is θ - λ ⊙ g and the direction of each
  // Hessian-vector product λ ⊙ v, so the products fold into v with -1 where MAML's use -α.
  const bool per_element_;
  const S fold_, scale_;
  std::vector<int> width_;
  std::vector<const S*> shared_w_, shared_b_;
  std::vector<std::int64_t> w_size_;
  std::vector<bool> adapt_w_, adapt_b_;
  std::size_t lowest_adapted_;
  int steps_ = 0;  // K; 0 when nothing adapts (θ_K = θ_0, every product along zero)
  // Every step's weights of the tensors that adapt (slot s holds θ_s; K + 1 slots); the others
  // are read from `layers` at every step.
  std::vector<std::vector<S>> w_steps_, b_steps_;
  // Meta-SGD keeps every step's gradients g_s (the rates' meta-gradient is -Σ_s g_s ⊙ v_{s+1}),
  // and the direction λ ⊙ v in u.
  std::vector<std::vector<S>> gw_steps_, gb_steps_, u_w_, u_b_;
  std::vector<const S*> rate_w_, rate_b_;
  std::vector<S*> rate_sum_w_, rate_sum_b_;
  // Per support step s: act_[s][j] layer j's output (after its ReLU; the last layer's outputs
  // are replaced by the loss gradient there), delta_[s][j] the loss gradient at layer j's output
  // (j < L - 1; the last layer's is act_[s][L - 1]), curvature_[s] the loss's at the outputs.
  std::vector<std::vector<std::vector<S>>> act_, delta_;
  std::vector<dense::LossCurvature<S>> curvature_;
  // The query pass's activations; the R-operator's values r_[j] at each layer's output; two
  // gradient buffers; v, the meta-gradient carried back.
  std::vector<std::vector<S>> query_act_, r_, v_w_, v_b_;
  std::vector<S> grad_a_, grad_b_;
  std::vector<bool> moves_;
  std::vector<S*> sums_;
  S* support_input_grad_ = nullptr;
  S* query_input_grad_ = nullptr;
  const S* support_x_;
  const S* query_x_;
  dense::StackTargets<S> support_targets_, query_targets_;
  std::vector<const S*> step_w_, step_b_;
  std::vector<S*> outs_;
};

template <typename S>
SecondOrderPass<S>::SecondOrderPass(const torch::Tensor& support_x, const StackedBatch& support,
                                    const torch::Tensor& query_x, const StackedBatch& query,
                                    const std::vector<torch::Tensor>& layers, tasks::LabelKind kind,
                                    SecondOrderPlan& plan)
    : kind_(kind),
      ns_(static_cast<int>(support_x.size(1))),
      nq_(static_cast<int>(query_x.size(1))),
      L_(layers.size() / 2),
      per_element_(!plan.rates.empty()),
      fold_(per_element_ ? -one_ : static_cast<S>(-plan.lr)),
      scale_(static_cast<S>(plan.scale)),
      width_(L_ + 1),
      shared_w_(L_),
      shared_b_(L_),
      w_size_(L_),
      adapt_w_(L_),
      adapt_b_(L_),
      lowest_adapted_(L_),
      w_steps_(L_),
      b_steps_(L_),
      gw_steps_(L_),
      gb_steps_(L_),
      u_w_(L_),
      u_b_(L_),
      rate_w_(L_),
      rate_b_(L_),
      rate_sum_w_(L_),
      rate_sum_b_(L_),
      query_act_(L_),
      r_(L_),
      v_w_(L_),
      v_b_(L_),
      moves_(L_),
      sums_(layers.size()),
      support_x_(support_x.data_ptr<S>()),
      query_x_(query_x.data_ptr<S>()),
      support_targets_(support, kind, support_x.scalar_type()),
      query_targets_(query, kind, query_x.scalar_type()),
      step_w_(L_),
      step_b_(L_),
      outs_(L_ + 1) {
  width_[0] = static_cast<int>(support_x.size(2));
  for (std::size_t j = 0; j < L_; ++j) {
    width_[j + 1] = static_cast<int>(layers[2 * j + 1].size(0));
    shared_w_[j] = layers[2 * j].data_ptr<S>();
    shared_b_[j] = layers[2 * j + 1].data_ptr<S>();
    w_size_[j] = static_cast<std::int64_t>(width_[j]) * width_[j + 1];
    adapt_w_[j] = plan.adapt[2 * j];
    adapt_b_[j] = plan.adapt[2 * j + 1];
    if (adapt_w_[j] || adapt_b_[j]) lowest_adapted_ = std::min(lowest_adapted_, j);
  }
  steps_ = lowest_adapted_ == L_ ? 0 : plan.steps;
  const int K = steps_;
  for (std::size_t j = 0; j < L_; ++j) {
    const auto w_cells = static_cast<std::size_t>(w_size_[j]);
    const auto b_cells = static_cast<std::size_t>(width_[j + 1]);
    if (adapt_w_[j]) w_steps_[j].resize((K + 1) * w_cells);
    if (adapt_b_[j]) b_steps_[j].resize((K + 1) * b_cells);
    if (per_element_ && adapt_w_[j]) {
      gw_steps_[j].resize(K * w_cells);
      u_w_[j].resize(w_cells);
      rate_w_[j] = plan.rates[2 * j].data_ptr<S>();
      rate_sum_w_[j] = plan.rate_sums[2 * j].data_ptr<S>();
    }
    if (per_element_ && adapt_b_[j]) {
      gb_steps_[j].resize(K * b_cells);
      u_b_[j].resize(b_cells);
      rate_b_[j] = plan.rates[2 * j + 1].data_ptr<S>();
      rate_sum_b_[j] = plan.rate_sums[2 * j + 1].data_ptr<S>();
    }
    query_act_[j].resize(static_cast<std::size_t>(cells(nq_, j + 1)));
    r_[j].resize(static_cast<std::size_t>(cells(ns_, j + 1)));
    v_w_[j].resize(w_cells);
    v_b_[j].resize(b_cells);
  }
  act_.resize(static_cast<std::size_t>(K));
  delta_.resize(static_cast<std::size_t>(K));
  curvature_.resize(static_cast<std::size_t>(K));
  for (int s = 0; s < K; ++s) {
    act_[s].resize(L_);
    delta_[s].resize(L_);
    for (std::size_t j = 0; j < L_; ++j) {
      if (s == 0 || j >= lowest_adapted_)
        act_[s][j].resize(static_cast<std::size_t>(cells(ns_, j + 1)));
      if (j + 1 < L_ && j >= lowest_adapted_)
        delta_[s][j].resize(static_cast<std::size_t>(cells(ns_, j + 1)));
    }
  }
  const int widest = *std::max_element(width_.begin(), width_.end());
  grad_a_.resize(static_cast<std::size_t>(std::max(ns_, nq_) * widest));
  grad_b_.resize(grad_a_.size());
  for (std::size_t e = 0; e < layers.size(); ++e) sums_[e] = plan.sums[e].data_ptr<S>();
  if (plan.support_input_grad.defined())
    support_input_grad_ = plan.support_input_grad.data_ptr<S>();
  if (plan.query_input_grad.defined()) query_input_grad_ = plan.query_input_grad.data_ptr<S>();
}

template <typename S>
double SecondOrderPass<S>::task(std::int64_t t) {
  const S* xs = support_x_ + t * ns_ * width_[0];
  const S* xq = query_x_ + t * nq_ * width_[0];
  for (std::size_t j = 0; j < L_; ++j) {
    if (adapt_w_[j]) std::copy(shared_w_[j], shared_w_[j] + w_size_[j], w_at(j, 0));
    if (adapt_b_[j]) std::copy(shared_b_[j], shared_b_[j] + width_[j + 1], b_at(j, 0));
  }
  for (int s = 0; s < steps_; ++s) inner_step(t, xs, s);
  const double loss = query_gradient(t, xq);
  for (int s = steps_; s-- > 0;) back_through_step(t, xs, s);
  for (std::size_t j = 0; j < L_; ++j) {
    for (std::int64_t k = 0; k < w_size_[j]; ++k) sums_[2 * j][k] += scale_ * v_w_[j][k];
    for (int k = 0; k < width_[j + 1]; ++k) sums_[2 * j + 1][k] += scale_ * v_b_[j][k];
  }
  return loss;
}

// Inner step s from θ_s to θ_{s+1}, keeping what the way back needs.
template <typename S>
void SecondOrderPass<S>::inner_step(std::int64_t t, const S* xs, int s) {
  set_weights(s);
  for (std::size_t j = 0; j < L_; ++j) outs_[j + 1] = act_at(s, j);
  const std::size_t first = s == 0 ? 0 : lowest_adapted_;
  dense::forward_rows(first == 0 ? xs : act_at(s, first - 1), ns_, width_, step_w_, step_b_, outs_,
                      first);
  dense::loss_gradient(act_[s][L_ - 1].data(), ns_, width_[L_], kind_, support_targets_.target(t),
                       support_targets_.classes(t), support_targets_.weight(t),
                       support_targets_.count(t), &curvature_[s]);
  if (!per_element_)  // the step is then folded into the gradient's product below
    for (std::size_t j = 0; j < L_; ++j) {
      if (adapt_w_[j]) std::copy(w_at(j, s), w_at(j, s) + w_size_[j], w_at(j, s + 1));
      if (adapt_b_[j]) std::copy(b_at(j, s), b_at(j, s) + width_[j + 1], b_at(j, s + 1));
    }
  for (std::size_t j = L_; j-- > lowest_adapted_;) {
    const S* d = delta_at(s, j);
    const S* in = j == 0 ? xs : act_at(s, j - 1);
    if (j > lowest_adapted_) {
      S* below = delta_at(s, j - 1);
      dense::input_product(w_at(j, s), d, ns_, width_[j], width_[j + 1], zero_, below);
      dense::relu_gradient(below, act_at(s, j - 1), cells(ns_, j));
    }
    if (!per_element_) {
      if (adapt_w_[j])
        dense::weight_gradient(d, in, ns_, width_[j], width_[j + 1], fold_, one_, w_at(j, s + 1));
      if (adapt_b_[j]) dense::bias_gradient(d, ns_, width_[j + 1], fold_, b_at(j, s + 1));
      continue;
    }
    if (adapt_w_[j]) {
      S* g = gw_steps_[j].data() + s * w_size_[j];
      dense::weight_gradient(d, in, ns_, width_[j], width_[j + 1], one_, zero_, g);
      const S *from = w_at(j, s), *rate = rate_w_[j];
      S* to = w_at(j, s + 1);
      for (std::int64_t k = 0; k < w_size_[j]; ++k) to[k] = from[k] - rate[k] * g[k];
    }
    if (adapt_b_[j]) {
      S* g = gb_steps_[j].data() + s * width_[j + 1];
      std::fill(g, g + width_[j + 1], zero_);
      dense::bias_gradient(d, ns_, width_[j + 1], one_, g);
      const S *from = b_at(j, s), *rate = rate_b_[j];
      S* to = b_at(j, s + 1);
      for (int k = 0; k < width_[j + 1]; ++k) to[k] = from[k] - rate[k] * g[k];
    }
  }
}

// v_K: the query loss's gradient at θ_K, for every tensor (and the query inputs); returns the
// task's mean query loss.
template <typename S>
double SecondOrderPass<S>::query_gradient(std::int64_t t, const S* xq) {
  set_weights(steps_);
  for (std::size_t j = 0; j < L_; ++j) outs_[j + 1] = query_act_[j].data();
  dense::forward_rows(xq, nq_, width_, step_w_, step_b_, outs_);
  const double loss = dense::loss_gradient(query_act_[L_ - 1].data(), nq_, width_[L_], kind_,
                                           query_targets_.target(t), query_targets_.classes(t),
                                           query_targets_.weight(t), query_targets_.count(t));
  S* d = query_act_[L_ - 1].data();
  S* below = grad_a_.data();
  for (std::size_t j = L_; j-- > 0;) {
    const S* in = j == 0 ? xq : query_act_[j - 1].data();
    if (j > 0) {
      dense::input_product(w_at(j, steps_), d, nq_, width_[j], width_[j + 1], zero_, below);
      dense::relu_gradient(below, query_act_[j - 1].data(), cells(nq_, j));
    } else if (query_input_grad_) {
      dense::input_product(w_at(0, steps_), d, nq_, width_[0], width_[1], one_,
                           query_input_grad_ + t * nq_ * width_[0], scale_);
    }
    dense::weight_gradient(d, in, nq_, width_[j], width_[j + 1], one_, zero_, v_w_[j].data());
    std::fill(v_b_[j].begin(), v_b_[j].end(), zero_);
    dense::bias_gradient(d, nq_, width_[j + 1], one_, v_b_[j].data());
    d = below;
    below = below == grad_a_.data() ? grad_b_.data() : grad_a_.data();
  }
  return loss;
}

// v_s = v_{s+1} - α H_S(θ_s) (M v_{s+1}): the Hessian-vector product along the direction, by
// the R-operator forward and backward, folded into v by the products' alpha = -α, beta = 1.
template <typename S>
void SecondOrderPass<S>::back_through_step(std::int64_t t, const S* xs, int s) {
  if (per_element_) {
    for (std::size_t j = 0; j < L_; ++j) {
      if (adapt_w_[j])
        rates_step(v_w_[j].data(), rate_w_[j], gw_steps_[j].data() + s * w_size_[j], w_size_[j],
                   scale_, u_w_[j].data(), rate_sum_w_[j]);
      if (adapt_b_[j])
        rates_step(v_b_[j].data(), rate_b_[j], gb_steps_[j].data() + s * width_[j + 1],
                   width_[j + 1], scale_, u_b_[j].data(), rate_sum_b_[j]);
    }
  }
  // R-forward: r_[j], the change of layer j's output (after its ReLU) along the direction;
  // moves_[j] whether it is not zero.
  std::fill(moves_.begin(), moves_.end(), false);
  for (std::size_t j = lowest_adapted_; j < L_; ++j) {
    S* rj = r_[j].data();
    const S* in = j == 0 ? xs : act_at(s, j - 1);
    S beta = zero_;
    if (adapt_b_[j]) {
      for (int row = 0; row < ns_; ++row)
        std::copy(dir_b(j), dir_b(j) + width_[j + 1], rj + row * width_[j + 1]);
      beta = one_;
    }
    if (adapt_w_[j]) {
      blas::gemm("T", "N", &width_[j + 1], &ns_, &width_[j], &one_, dir_w(j), &width_[j], in,
                 &width_[j], &beta, rj, &width_[j + 1]);
      beta = one_;
    }
    if (j > 0 && moves_[j - 1]) {
      blas::gemm("T", "N", &width_[j + 1], &ns_, &width_[j], &one_, w_at(j, s), &width_[j],
                 r_[j - 1].data(), &width_[j], &beta, rj, &width_[j + 1]);
      beta = one_;
    }
    moves_[j] = beta == one_;
    if (moves_[j] && j + 1 < L_) dense::relu_gradient(rj, act_at(s, j), cells(ns_, j + 1));
  }
  // R-backward: rd, the change of the loss gradient at layer j's output.
  S* rd = grad_a_.data();
  S* rd_below = grad_b_.data();
  bool rd_moves = moves_[L_ - 1];
  if (rd_moves) {
    std::copy(r_[L_ - 1].begin(), r_[L_ - 1].end(), rd);
    dense::loss_hessian_product(rd, ns_, width_[L_], kind_, curvature_[s]);
  }
  for (std::size_t j = L_; j-- > 0;) {
    const S* in = j == 0 ? xs : act_at(s, j - 1);
    const bool input_moves = j > 0 && moves_[j - 1];
    bool below_moves = false;
    if (j > 0) {
      // Reads the direction before this step's update of v below.
      S beta = zero_;
      if (rd_moves) {
        dense::input_product(w_at(j, s), rd, ns_, width_[j], width_[j + 1], beta, rd_below);
        beta = one_;
      }
      if (adapt_w_[j]) {
        dense::input_product(dir_w(j), delta_at(s, j), ns_, width_[j], width_[j + 1], beta,
                             rd_below);
        beta = one_;
      }
      below_moves = beta == one_;
      if (below_moves) dense::relu_gradient(rd_below, act_at(s, j - 1), cells(ns_, j));
    } else if (support_input_grad_) {
      // The inputs' share: -α (∂∇_θL_S / ∂x)ᵀ M v_{s+1}, the same R-operator at the input
      // (where no ReLU is).
      S* g = support_input_grad_ + t * ns_ * width_[0];
      if (rd_moves)
        dense::input_product(w_at(0, s), rd, ns_, width_[0], width_[1], one_, g, fold_ * scale_);
      if (adapt_w_[0])
        dense::input_product(dir_w(0), delta_at(s, 0), ns_, width_[0], width_[1], one_, g,
                             fold_ * scale_);
    }
    if (rd_moves) {
      dense::weight_gradient(rd, in, ns_, width_[j], width_[j + 1], fold_, one_, v_w_[j].data());
      dense::bias_gradient(rd, ns_, width_[j + 1], fold_, v_b_[j].data());
    }
    if (input_moves)
      dense::weight_gradient(delta_at(s, j), r_[j - 1].data(), ns_, width_[j], width_[j + 1], fold_,
                             one_, v_w_[j].data());
    std::swap(rd, rd_below);
    rd_moves = below_moves;
  }
}

template <typename S>
double run(const torch::Tensor& support_x, const StackedBatch& support,
           const torch::Tensor& query_x, const StackedBatch& query,
           const std::vector<torch::Tensor>& layers, tasks::LabelKind kind, SecondOrderPlan& plan) {
  SecondOrderPass<S> pass(support_x, support, query_x, query, layers, kind, plan);
  double loss = 0;
  for (std::int64_t t = 0; t < support_x.size(0); ++t) loss += pass.task(t);
  return loss;
}

}  // namespace

bool dense_maml_supports(const torch::Tensor& support_x, const torch::Tensor& query_x,
                         const std::vector<torch::Tensor>& layers) {
  if (!dense_pass_supports(support_x, layers) || !dense_pass_supports(query_x, layers))
    return false;
  if (support_x.size(0) != query_x.size(0)) return false;
  for (std::size_t e = 0; e < layers.size(); ++e)
    if (layers[e].dim() != (e % 2 == 0 ? 2 : 1)) return false;
  return true;
}

double dense_maml_gradient(const torch::Tensor& support_x, const StackedBatch& support,
                           const torch::Tensor& query_x, const StackedBatch& query,
                           const std::vector<torch::Tensor>& layers, tasks::LabelKind kind,
                           SecondOrderPlan& plan) {
  if (!dense_maml_supports(support_x, query_x, layers))
    throw std::invalid_argument(
        "dense_maml_gradient: unsupported tensors (CPU, contiguous, one dtype, shared layers)");
  if (plan.adapt.size() != layers.size() || plan.sums.size() != layers.size() || plan.steps < 0)
    throw std::invalid_argument("dense_maml_gradient: a plan that does not fit the layers");
  if (!plan.rates.empty()) {
    if (plan.rates.size() != layers.size() || plan.rate_sums.size() != layers.size())
      throw std::invalid_argument("dense_maml_gradient: one rate per tensor of the layers");
    for (std::size_t e = 0; e < layers.size(); ++e)
      for (const torch::Tensor* t : {&plan.rates[e], &plan.rate_sums[e]})
        if (!t->defined() || !t->is_contiguous() || t->sizes() != layers[e].sizes() ||
            t->scalar_type() != layers[e].scalar_type())
          throw std::invalid_argument("dense_maml_gradient: a rate of the wrong shape or dtype");
  }
  auto fits = [](const torch::Tensor& grad, const torch::Tensor& input) {
    return !grad.defined() || (grad.is_contiguous() && grad.sizes() == input.sizes() &&
                               grad.scalar_type() == input.scalar_type());
  };
  if (!fits(plan.support_input_grad, support_x) || !fits(plan.query_input_grad, query_x))
    throw std::invalid_argument("dense_maml_gradient: an input gradient of the wrong shape");
  for (std::size_t e = 0; e < layers.size(); ++e) {
    const torch::Tensor& sum = plan.sums[e];
    if (!sum.defined() || !sum.is_contiguous() || sum.sizes() != layers[e].sizes() ||
        sum.scalar_type() != layers[e].scalar_type())
      throw std::invalid_argument(
          "dense_maml_gradient: a gradient sum of the wrong shape or dtype");
  }
  torch::NoGradGuard no_grad;
  if (support_x.scalar_type() == torch::kFloat64)
    return run<double>(support_x, support, query_x, query, layers, kind, plan);
  return run<float>(support_x, support, query_x, query, layers, kind, plan);
}

}  // namespace ml::models
