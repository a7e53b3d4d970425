// The interface every meta-learned network offers the algorithms (meta/meta_learner.hpp), so
// that MAML, FOMAML, Reptile, ANIL, Meta-SGD, ProtoNets and the pretraining baseline run any
// model through one trainer: a functional forward with the parameters passed in explicitly (an
// inner loop runs it with adapted weights without copying modules), for one batch and for a
// stack of tasks, the representation the head reads (prototypes, probes), and the parameter
// layout. Implemented by the MLP family over feature batches (models/model.hpp) and by the
// transformer over token batches (models/transformer.hpp). Hand-written fast paths that only
// hold for the MLP (models/dense_backprop.hpp, meta/implicit_inner_loop.hpp) ask for it by
// dynamic_cast and fall back to autograd otherwise.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "models/batch.hpp"
#include "models/task_stack.hpp"

namespace ml::models {

// kEmbedding parameters are only meta-updated unless meta.inner_params = "all"; kHead is what
// ANIL adapts; kAdapter (FiLM, LoRA) is what meta.inner_params = "adapters" adapts with the
// head; kBackbone (a trainable TorchScript backbone's weights) is only ever meta-updated.
enum class ParamGroup { kEmbedding, kTower, kHead, kAdapter, kBackbone };

// A stacked forward pass stopped at a point that frozen parameters decide: the hidden state
// there and where to resume (for the transformer, the next encoder layer).
struct StackedPrefix {
  torch::Tensor hidden;
  std::int64_t resume_at = 0;
  bool defined() const { return hidden.defined(); }
};

// The index of the first parameter an inner loop's `mask` adapts (mask.size() when none): what
// Network::stacked_prefix splits at.
inline std::size_t first_adapted(const std::vector<bool>& mask) {
  return static_cast<std::size_t>(std::find(mask.begin(), mask.end(), true) - mask.begin());
}

class Network : public torch::nn::Module {
 public:
  // The parameters in layout order (the order forward() expects).
  std::vector<torch::Tensor> params() const { return parameters(); }
  virtual const std::vector<ParamGroup>& groups() const = 0;
  virtual const std::vector<std::string>& names() const = 0;
  // Outputs per row: 1 (binary logit, regression value) or N (N-way).
  virtual std::int64_t outputs() const = 0;
  // How many leading parameters are embedding tables read through the batch's id columns
  // (table k by Batch::ids column k): their meta-gradient is row-sparse and an inner loop adapts
  // only the rows a task reads. Other parameters, the transformer's token table included, are
  // dense to the algorithms.
  virtual std::size_t id_tables() const = 0;
  // Multiply-adds of the largest matrix product of a forward pass on `rows` rows: what decides
  // whether threads inside one product pay (runtime::WorkShape).
  virtual double largest_product(std::int64_t rows) const = 0;
  // Values in the widest activation of a forward pass on `rows` rows: what decides how many
  // tasks one stack may hold before it spills out of a core's cache (MetaLearner). 0 (the
  // default): small enough to stack any number.
  virtual double activation_values(std::int64_t /*rows*/) const { return 0; }

  // Outputs [n, outputs()] computed with `p` in place of the module's own parameters.
  virtual torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const = 0;
  // The representation the head reads: [n, width].
  virtual torch::Tensor represent(const Batch& batch,
                                  const std::vector<torch::Tensor>& p) const = 0;
  // Outputs [T, n, outputs()] of a stack of T tasks in one pass. Each p[i] is either shared by
  // every task (the parameter's own shape) or per task (a leading T dimension; for an id table,
  // the task's gathered rows [T, u, dim] addressed by batch.local_ids).
  virtual torch::Tensor forward_stacked(const StackedBatch& batch,
                                        const std::vector<torch::Tensor>& p) const = 0;
  virtual torch::Tensor represent_stacked(const StackedBatch& batch,
                                          const std::vector<torch::Tensor>& p) const = 0;
  // Whether p[i] is given per task (it has one more dimension than the parameter).
  virtual bool per_task(std::size_t i, const torch::Tensor& value) const = 0;

  // The part of forward_stacked(batch, p) that only parameters before index `first_adapted`
  // (layout order) decide: what an inner loop adapting nothing below that index computes
  // identically at every step, so it computes it once per meta-batch (the transformer's
  // embeddings and encoder layers below meta.inner_layers; every layer for a head-only loop).
  // Undefined (the default) where the network has no such split or nothing would be saved.
  virtual StackedPrefix stacked_prefix(const StackedBatch& /*batch*/,
                                       const std::vector<torch::Tensor>& /*p*/,
                                       std::size_t /*first_adapted*/) const {
    return {};
  }
  // forward_stacked(batch, p) resumed from a defined stacked_prefix() of the same batch with
  // the same parameters below its split: equal to it up to float rounding.
  virtual torch::Tensor forward_stacked_from(const StackedPrefix& prefix, const StackedBatch& batch,
                                             const std::vector<torch::Tensor>& p) const {
    (void)prefix;
    return forward_stacked(batch, p);
  }
};

}  // namespace ml::models
