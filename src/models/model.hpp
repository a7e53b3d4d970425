// The models, with a functional forward: the parameters are passed in explicitly, so every
// gradient-based meta-learner runs the model with adapted weights without copying modules.
// Parameter layout: [one embedding table per id field (embedding_mlp)] [tower: W, b per hidden
// layer] [head: W, b]. The head has 1 output (binary logit, regression value) or N (N-way).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "models/batch.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

enum class ParamGroup { kEmbedding, kTower, kHead };

struct ModelShape {
  std::string type = "mlp";  // "mlp" | "embedding_mlp"
  std::vector<std::int64_t> hidden = {128, 64};
  std::int64_t embedding_dim = 16;
  std::int64_t dense_dim = 0;
  std::vector<std::int64_t> id_cardinalities;  // embedding_mlp: rows of each table
  std::int64_t outputs = 1;
};

ModelShape model_shape(const config::Config& config, std::int64_t dense_dim,
                       const std::vector<std::int64_t>& id_cardinalities);

class FunctionalModelImpl : public torch::nn::Module {
 public:
  explicit FunctionalModelImpl(ModelShape shape);

  // The parameters in layout order (the order forward() expects).
  std::vector<torch::Tensor> params() const { return parameters(); }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  const std::vector<std::string>& names() const { return names_; }
  const ModelShape& shape() const { return shape_; }

  // Outputs [n, outputs] computed with `p` in place of the module's own parameters.
  torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const;
  // The representation the head reads: [n, hidden.back()] (prototypes are built on it).
  torch::Tensor represent(const Batch& batch, const std::vector<torch::Tensor>& p) const;

 private:
  void add(const std::string& name, torch::Tensor value, ParamGroup group);
  ModelShape shape_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> names_;
  std::size_t first_tower_ = 0;
};
TORCH_MODULE(FunctionalModel);

// Which parameters an inner loop adapts: "dense" (all but embeddings), "all" or "head".
std::vector<bool> adapt_mask(const FunctionalModelImpl& model, const std::string& which);

// Mean loss of outputs against targets: BCE-with-logits (binary), MSE (regression),
// cross-entropy (multiclass).
torch::Tensor task_loss(const torch::Tensor& outputs, const torch::Tensor& target,
                        tasks::LabelKind kind);

}  // namespace ml::models
