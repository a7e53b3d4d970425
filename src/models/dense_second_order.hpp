// Second-order MAML's meta-gradient through a task stack's dense layers, by hand: each task walks
// its inner SGD steps forward (keeping every step's weights, activations and output gradients),
// takes its query loss's gradient at the adapted weights, then walks back through the steps with
// one Hessian-vector product per step (Pearlmutter 1994, "Fast exact multiplication by the
// Hessian", the R-operator of forward and backward pass), each a handful of BLAS calls on the
// task's own rows. On few-shot tasks' small matrices autograd's double backward spends most of
// its time in dispatch and graph bookkeeping (docs/BENCHMARKS.md); this is the same arithmetic
// without it. Tests hold it to autograd and to the per-task reference in float64.
//
// The inner loop (Finn et al. 2017): θ_{s+1} = θ_s - α M ∇L_S(θ_s), s = 0..K-1, M the 0/1 mask of
// the tensors that adapt (Meta-SGD: λ ⊙ in place of α); the meta-gradient of L_Q(θ_K) is v_0, with
// v_K = ∇L_Q(θ_K) and v_s = v_{s+1} - α H_S(θ_s) (M v_{s+1}), H_S the support loss's Hessian.
// ReLU's second derivative is zero almost everywhere, so H_S·d needs only the first-order pass's
// products with d in them and the loss's curvature at the outputs (dense_kernels.hpp's
// loss_hessian_product).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

struct SecondOrderPlan {
  // One entry per tensor of `layers` (weight, bias, ...): whether the inner loop moves it.
  std::vector<bool> adapt;
  int steps = 1;     // K, the inner SGD steps
  double lr = 0;     // α, the inner learning rate
  double scale = 1;  // sums[e] += scale · Σ_t ∂L_Q,t(θ_K,t) / ∂θ_e
  // Where the meta-gradient is added, one per tensor of `layers`, each contiguous with the
  // tensor's own shape and dtype.
  std::vector<torch::Tensor> sums;
  // Where scale · Σ_t ∂L_Q,t / ∂(the tower's inputs) is added, when defined: [T, n_s, in] and
  // [T, n_q, in], contiguous, the inputs' dtype. The inputs' route to the embedding tables that
  // produce them (the tables themselves must not adapt).
  torch::Tensor support_input_grad, query_input_grad;
  // Meta-SGD (Li et al. 2017, arXiv:1707.09835), when not empty: per-element inner learning
  // rates λ, one per tensor of `layers` (its shape; read where the tensor adapts), in place of
  // `lr`: θ_{s+1} = θ_s - λ ⊙ M ∇L_S(θ_s). rate_sums (the same shapes) then receive
  // scale · Σ_t ∂L_Q,t / ∂λ where the tensor adapts.
  std::vector<torch::Tensor> rates, rate_sums;
};

// Whether dense_maml_gradient() runs on these: dense_pass_supports() for both sides, and every
// tensor of `layers` shared (no task dimension).
bool dense_maml_supports(const torch::Tensor& support_x, const torch::Tensor& query_x,
                         const std::vector<torch::Tensor>& layers);

// Adds scale · Σ_t (the second-order meta-gradient of task t's mean query loss) into plan.sums
// and returns Σ_t (task t's mean query loss after its K inner steps). `support_x` [T, n_s, in]
// and `query_x` [T, n_q, in] are the tower's inputs (dense features), `support` / `query` their
// stacks (targets, padding weights); `layers` (weight [out, in], bias [out], ...) the shared
// initial weights, every layer but the last followed by a ReLU. Nothing in `layers` changes.
// Throws std::invalid_argument when !dense_maml_supports() or the plan does not fit `layers`.
double dense_maml_gradient(const torch::Tensor& support_x, const StackedBatch& support,
                           const torch::Tensor& query_x, const StackedBatch& query,
                           const std::vector<torch::Tensor>& layers, tasks::LabelKind kind,
                           SecondOrderPlan& plan);

}  // namespace ml::models
