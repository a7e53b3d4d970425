// The dense layers of a task stack (tower and head: ReLU hidden layers, a linear head and the
// task's loss) run forward and backward by hand, without autograd, for the first-order inner
// loops (fomaml, Reptile, and adapting a new task). On the small matrices of few-shot tasks a
// meta-step spent two thirds of its time in libtorch's per-operation dispatch and autograd
// bookkeeping rather than in arithmetic (scripts/profile_meta.sh W1 fomaml); here each task and
// layer is one BLAS call per product on raw buffers, the SGD step is folded into the weight
// gradient's product (alpha = -lr, beta = 1, Finn et al. 2017's inner update
// θ' = θ - α ∇θ L), and ReLU, bias and loss gradients are plain loops. It is the same function
// as forward_stacked + task_losses + autograd: tests hold it to them to float rounding.
//
// Losses and their gradients at the outputs o (per row, as models::task_loss):
//   binary      max(o, 0) - o y + log(1 + e^-|o|)      d = sigmoid(o) - y
//   regression  (o - y)^2                               d = 2 (o - y)
//   multiclass  logsumexp(o) - o_y                      d = softmax(o) - onehot(y)
// each task's loss is the mean over its real rows (padding weighs 0).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

// What the backward pass does with one parameter's per-task gradient g[t].
enum class GradientUse {
  kIgnore,        // not needed (and, below the lowest needed layer, not computed)
  kSgdStep,       // p[t] -= lr * g[t], in place: p must be per task
  kSumOverTasks,  // sum += scale * Σ_t g[t], `sum` having the parameter's own shape
};

struct DensePassPlan {
  // One entry per tensor of `layers` (weight, bias, weight, bias, ...).
  std::vector<GradientUse> use;
  double lr = 0;     // for kSgdStep
  double scale = 1;  // for kSumOverTasks
  // Where kSumOverTasks adds (contiguous, the parameter's own shape and dtype); undefined
  // entries elsewhere.
  std::vector<torch::Tensor> sums;
  // Empty: every task's n rows (padding weighs 0). Else one (first row, count) per task: the
  // pass uses those rows of the task alone, all real, its loss their mean (Reptile's walk
  // through support + query, in place of a new stack per step).
  std::vector<std::pair<std::int64_t, std::int64_t>> rows;
};

// Whether dense_pass() can run on these tensors: all on the CPU, contiguous, one dtype (float or
// double); `x0` [T, n, in]; `layers` (weight [out, in] or [T, out, in], bias [out] or [T, out])
// pairs whose sizes chain from `in`.
bool dense_pass_supports(const torch::Tensor& x0, const std::vector<torch::Tensor>& layers);

// One forward pass of the stacked tasks from the tower's input `x0` [T, n, in] (see
// FunctionalModelImpl::tower_input_stacked) through `layers`, then, if any entry of plan.use
// asks for it, one backward pass that applies each parameter's gradient as plan.use says.
// Returns Σ_t (task t's mean loss) before any update: task_losses(...).sum(). Every layer but
// the last is followed by a ReLU. Throws std::invalid_argument when !dense_pass_supports(), when
// a kSgdStep parameter is shared, or a multiclass target is not a class index of the head.
double dense_pass(const torch::Tensor& x0, const std::vector<torch::Tensor>& layers,
                  const StackedBatch& batch, tasks::LabelKind kind, DensePassPlan& plan);

// Whether task_move_sum() can run on these tensors: both on the CPU, contiguous, one dtype
// (float or double), `ends` [T, start's shape].
bool task_move_sum_supports(const torch::Tensor& start, const torch::Tensor& ends);

// scale · Σ_t (start - ends[t]) in start's shape, the tasks summed in order: Reptile's
// meta-gradient of a dense parameter from its shared start [...] and each task's walk end
// `ends` [T, ...] (meta::sum_of_task_moves). std::invalid_argument where
// !task_move_sum_supports(). One loop over the elements, here because this file is built at
// -O3, where GCC vectorizes it.
torch::Tensor task_move_sum(const torch::Tensor& start, const torch::Tensor& ends, double scale);

}  // namespace ml::models
