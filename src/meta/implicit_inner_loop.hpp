// Second-order MAML's inner loop without per-task weight matrices. One SGD step on a linear
// layer y = x Wᵀ + b moves W by -lr δᵀx and b by -lr 1ᵀδ, where x [n, in] are the layer's
// inputs on a task's support rows and δ [n, out] the gradient of the task's loss at the
// layer's outputs. After s steps the task's layer therefore computes, for any input x,
//     y = x W0ᵀ + b0 - lr (x Xᵀ + 1) D
// with X [s·n, in] the support inputs of every step so far and D = [δ_0; ...; δ_(s-1)].
// Keeping (X, D) per task instead of W [T, out, in] removes the per-task weight copies, their
// updates and, above all, the elementwise work on them in the second-order backward, which
// dominate the explicit stacked loop when out·in is large against the support rows (profile in
// docs/BENCHMARKS.md). It is the same function of the meta-parameters, not an approximation:
// tests hold it to the per-task reference loop. Layers where the explicit form is cheaper
// (a head with one output), embeddings and everything else keep stacked_inner_loop's form; so
// does every parameter of a network other than the MLP (the transformer), for which this is
// the plain stacked second-order loop.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "models/model.hpp"
#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::meta {

// Whether a linear layer in -> out adapted on `support_rows` rows per task per step is cheaper
// kept implicitly.
bool implicit_layer_pays(std::int64_t in, std::int64_t out, std::int64_t support_rows);

class ImplicitInnerLoop {
 public:
  // Which adapted linear layers are kept implicitly: those where implicit_layer_pays(), or all
  // of them (tests hold both forms to each other on every layer).
  enum class Layers { kWhereCheaper, kEveryLinear };

  // Tasks start from `params` (the meta-parameters, kept differentiable); parameters where
  // `mask` is true adapt at learning rate `lr`. `embedding_rows` as for per_task_parameters.
  ImplicitInnerLoop(const models::Network& model, std::vector<torch::Tensor> params,
                    const std::vector<bool>& mask, double lr, std::int64_t tasks,
                    std::int64_t support_rows, const std::vector<torch::Tensor>& embedding_rows,
                    Layers layers = Layers::kWhereCheaper);

  // One SGD step of every task on its support rows; the graph is kept (second order).
  // Every step of one loop takes the same support batch.
  void step(const models::StackedBatch& support, tasks::LabelKind kind);
  // Outputs [T, n, outputs] of the adapted tasks on `batch`.
  torch::Tensor forward(const models::StackedBatch& batch) const;
  // How many linear layers are kept implicitly.
  std::size_t implicit_layers() const;

 private:
  // Layer `weight`'s output on x with each task's adapted weights.
  torch::Tensor implicit_linear(std::size_t weight, const torch::Tensor& x) const;

  const models::Network& model_;
  const models::FunctionalModelImpl* mlp_;  // nullptr: no layer is kept implicitly
  std::vector<torch::Tensor> params_;       // the shared starting point
  std::vector<torch::Tensor> fast_;         // explicit per-task parameters (or shared ones)
  std::vector<bool> explicit_mask_;         // which fast_ entries adapt explicitly
  std::vector<bool> implicit_;              // per weight index: kept as (X, D)
  std::vector<torch::Tensor> inputs_;       // X [T, rows so far, in] per implicit weight index
  std::vector<torch::Tensor> deltas_;       // D [T, rows so far, out]
  // x xᵀ + 1 of a layer whose support inputs are constant data, once computed.
  mutable std::vector<torch::Tensor> constant_kernels_;
  // A network other than the MLP: its support pass below the first adapted parameter
  // (models::Network::stacked_prefix), the same at every step, computed at the first one on
  // the batch whose features prefix_key_ holds.
  models::StackedPrefix support_prefix_;
  torch::Tensor prefix_key_;
  double lr_;
};

}  // namespace ml::meta
