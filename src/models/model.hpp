// The models, with a functional forward: the parameters are passed in explicitly, so every
// gradient-based meta-learner runs the model with adapted weights without copying modules.
// Parameter layout: [one embedding table per id field (embedding_mlp)] [tower: W, b per hidden
// layer] [head: W, b]. The head has 1 output (binary logit, regression value) or N (N-way).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "models/batch.hpp"
#include "models/network.hpp"
#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

struct ModelShape {
  config::ModelType type = config::ModelType::kMlp;
  std::vector<std::int64_t> hidden = {128, 64};
  std::int64_t embedding_dim = 16;
  std::int64_t dense_dim = 0;
  std::vector<std::int64_t> id_cardinalities;  // embedding_mlp: rows of each table
  std::int64_t outputs = 1;
};

// The shape `config` asks for over the feature space's sizes; ConfigError, naming the config's
// sizes, when it would hold more than config::kMaxModelParameters.
ModelShape model_shape(const config::Config& config, std::int64_t dense_dim,
                       const std::vector<std::int64_t>& id_cardinalities);

// Multiply-adds of the model's largest linear layer on `rows` rows: what decides whether
// threads inside one product pay (runtime::WorkShape).
double largest_product(const ModelShape& shape, std::int64_t rows);

// The MLP family (models::Network over feature batches).
class FunctionalModelImpl : public Network {
 public:
  explicit FunctionalModelImpl(ModelShape shape);

  const std::vector<ParamGroup>& groups() const override { return groups_; }
  const std::vector<std::string>& names() const override { return names_; }
  const ModelShape& shape() const { return shape_; }
  std::int64_t outputs() const override { return shape_.outputs; }
  // The embedding tables, one per id field (embedding_mlp).
  std::size_t id_tables() const override { return first_tower_; }
  double largest_product(std::int64_t rows) const override;

  // As models::Network; the representation is [n, hidden.back()].
  torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor forward_stacked(const StackedBatch& batch,
                                const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent_stacked(const StackedBatch& batch,
                                  const std::vector<torch::Tensor>& p) const override;
  // What the first tower layer reads: [T, n, dense_dim + id_fields * embedding_dim], the dense
  // features followed by each id field's embedding (p's tables, shared or per task).
  torch::Tensor tower_input_stacked(const StackedBatch& batch,
                                    const std::vector<torch::Tensor>& p) const;
  // Index in the parameter layout of the first tower (or head) weight: the embedding tables
  // come before it, the dense layers' (weight, bias) pairs from it on.
  std::size_t first_dense_parameter() const { return first_tower_; }
  // A linear layer of the stacked forward: its weight's index in the parameter layout (the
  // bias follows it) and its input [T, n, in] give its output [T, n, out]. Lets an inner loop
  // keep its own form of a layer's adapted weights (implicit_inner_loop.hpp).
  using StackedLinear = std::function<torch::Tensor(std::size_t, const torch::Tensor&)>;
  // forward_stacked with `linear` applying every tower and head layer; p still supplies the
  // embeddings.
  torch::Tensor forward_stacked(const StackedBatch& batch, const std::vector<torch::Tensor>& p,
                                const StackedLinear& linear) const;
  torch::Tensor represent_stacked(const StackedBatch& batch, const std::vector<torch::Tensor>& p,
                                  const StackedLinear& linear) const;
  // The default StackedLinear: p's weight and bias at `weight_index`, each shared or per task.
  torch::Tensor linear_stacked(const torch::Tensor& x, const std::vector<torch::Tensor>& p,
                               std::size_t weight_index) const;
  bool per_task(std::size_t i, const torch::Tensor& value) const override {
    return value.dim() > ranks_[i];
  }

 private:
  void add(const std::string& name, torch::Tensor value, ParamGroup group);
  ModelShape shape_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> names_;
  std::vector<std::int64_t> ranks_;
  std::size_t first_tower_ = 0;
};
TORCH_MODULE(FunctionalModel);

// Per-task mean losses [T] of stacked outputs over each task's real rows (padding weighs 0).
torch::Tensor task_losses(const torch::Tensor& outputs, const StackedBatch& batch,
                          tasks::LabelKind kind);

// Which parameters an inner loop adapts: all but embeddings (kDense), all, the head, or the
// adapters and the head; never a backbone's (ParamGroup::kBackbone).
std::vector<bool> adapt_mask(const Network& model, config::InnerParams which);

// Mean loss of outputs against targets: BCE-with-logits (binary), MSE (regression),
// cross-entropy (multiclass).
torch::Tensor task_loss(const torch::Tensor& outputs, const torch::Tensor& target,
                        tasks::LabelKind kind);

}  // namespace ml::models
