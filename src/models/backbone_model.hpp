// The `backbone` model of text runs: a pretrained TorchScript encoder (models/
// torchscript_backbone.hpp) under the tool's own head, with parameter-efficient adapters between
// them (model.adapter), as a models::Network so that every algorithm, eval, adapt and predict
// run it unchanged.
//
//   x  = backbone(tokens)                         [n, dim]  (a frozen backbone's, cached)
//   x  = x * film_scale + film_shift              FiLM (Perez et al. 2018, arXiv:1709.07871)
//   x  = relu(x W_l^T + b_l + (x A_l^T) B_l^T)    per model.hidden layer l; A_l, B_l with LoRA
//                                                 (Hu et al. 2021, arXiv:2106.09685), rank r
//   y  = x W_head^T + b_head                      [n, outputs]
//
// Parameter layout (names()):
//   backbone_<name> (trainable backbone only: its own weights, '.' written '_')  kBackbone
//   film_scale [dim] (ones), film_shift [dim] (zeros)               FiLM only,   kAdapter
//   per tower layer l: tower_l_weight [h_l, in], tower_l_bias [h_l]               kTower
//                      tower_l_lora_a [r, in] (small random), tower_l_lora_b [h_l, r] (zeros)
//                                                                   LoRA only,   kAdapter
//   head_weight [outputs, h_last], head_bias [outputs]                            kHead
// Zero-initialised B and unit FiLM make the adapters start as the identity: the meta-learned
// initialisation moves them from there. The backbone's weights are never per task (an inner
// loop cannot adapt them: models::adapt_mask), so a stack's tasks share one backbone pass.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "models/network.hpp"
#include "models/torchscript_backbone.hpp"

namespace ml::models {

struct BackboneShape {
  std::int64_t dim = 0;  // the backbone's vector width
  std::vector<std::int64_t> hidden;
  std::int64_t outputs = 1;
  config::AdapterKind adapter = config::AdapterKind::kNone;
  std::int64_t rank = 4;
};

// The shape config.model asks for over `backbone`, with `outputs` outputs.
BackboneShape backbone_shape(const config::Config& config, const TorchScriptBackbone& backbone,
                             std::int64_t outputs);

class BackboneModelImpl : public Network {
 public:
  // A trainable `backbone` is deep-copied: the model's parameters are its own copy's tensors.
  BackboneModelImpl(BackboneShape shape, std::shared_ptr<const TorchScriptBackbone> backbone);

  const std::vector<ParamGroup>& groups() const override { return groups_; }
  const std::vector<std::string>& names() const override { return names_; }
  std::int64_t outputs() const override { return shape_.outputs; }
  std::size_t id_tables() const override { return 0; }
  // The tower and head's largest product (the backbone's own are not known).
  double largest_product(std::int64_t rows) const override;
  const BackboneShape& shape() const { return shape_; }
  const TorchScriptBackbone& backbone() const { return *backbone_; }

  // The backbone's vectors of a batch [n, dim]: its dense features when they hold them (a
  // frozen backbone's cache, pipeline/text_run_data.hpp), else the backbone run on its tokens
  // with p's backbone weights.
  torch::Tensor features(const Batch& batch, const std::vector<torch::Tensor>& p) const;
  // The same for a stack [T, n, dim]; a padding row (no real token) gets zeros.
  torch::Tensor features_stacked(const StackedBatch& batch,
                                 const std::vector<torch::Tensor>& p) const;

  torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  // The last tower layer's output [n, h_last]: what the head reads.
  torch::Tensor represent(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor forward_stacked(const StackedBatch& batch,
                                const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent_stacked(const StackedBatch& batch,
                                  const std::vector<torch::Tensor>& p) const override;
  bool per_task(std::size_t i, const torch::Tensor& value) const override {
    return value.dim() > ranks_[i];
  }
  // The backbone's vectors when the batch carries tokens (the backbone runs once per inner
  // loop instead of once per step); undefined when they are cached in the batch.
  StackedPrefix stacked_prefix(const StackedBatch& batch, const std::vector<torch::Tensor>& p,
                               std::size_t first_adapted) const override;
  torch::Tensor forward_stacked_from(const StackedPrefix& prefix, const StackedBatch& batch,
                                     const std::vector<torch::Tensor>& p) const override;

 private:
  void add(const std::string& name, torch::Tensor value, ParamGroup group);
  // The adapters and tower over backbone vectors [T, n, dim] -> [T, n, h_last].
  torch::Tensor tower(torch::Tensor x, const std::vector<torch::Tensor>& p) const;
  torch::Tensor head(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const;
  std::vector<torch::Tensor> backbone_weights(const std::vector<torch::Tensor>& p) const;

  BackboneShape shape_;
  std::shared_ptr<const TorchScriptBackbone> backbone_;
  std::size_t backbone_params_ = 0;  // leading parameters that are the backbone's
  std::size_t film_ = 0;             // index of film_scale (when FiLM)
  std::vector<std::size_t> layers_;  // index of each tower layer's weight
  std::vector<ParamGroup> groups_;
  std::vector<std::string> names_;
  std::vector<std::int64_t> ranks_;
};
TORCH_MODULE(BackboneModel);

}  // namespace ml::models
