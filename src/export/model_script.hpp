// The model families of `metalearn export` (export/torchscript_export.hpp), one function each:
// it puts a loaded model's weights on a TorchScript module as parameters named as in the
// checkpoint, and defines the module's logits() in TorchScript source that computes what the
// family's functional forward computes on them (models/model.hpp, models/transformer.hpp).
// Exporting one more family is one more function here and one entry in export_family().
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "inference/adapted_model.hpp"

namespace ml::exporting {

// A TorchScript List[str] attribute's value.
c10::List<std::string> string_list(const std::vector<std::string>& values);

// The arguments of a family's logits(self, ...), in order.
struct ScriptInputs {
  std::vector<std::string> names;   // "dense", "ids" / "tokens", "mask"
  std::vector<std::string> shapes;  // "[n, 14] float32" ...
};

// The MLP family (models::FunctionalModelImpl: model.type mlp and embedding_mlp): logits(self,
// dense [n, D] float32 raw, ids [n, F] int64) -> [n, outputs]. Registers the weights
// (embedding_k, tower_l_{weight,bias}, head_{weight,bias}), the feature moments feature_mean and
// feature_scale [D] (buffers: x -> (x - mean) / scale, NaN -> 0, i.e. the training mean, as
// features::FeatureEncoder::encode) and, for an adapted protonet, its class prototypes
// [classes, width] (buffer prototypes: logits are minus squared distances to them; binary: the
// log-odds of class 1, Snell et al. 2017), plus the attributes feature_names and
// id_field_names.
ScriptInputs script_feature_model(const inference::ScoringModel& model, torch::jit::Module& module);

// The text transformer (models::TransformerImpl: model.type transformer): logits(self, tokens
// [n, L] int64, mask [n, L] bool) -> [n, classes], the pre-norm encoder with its attention,
// activation and masked mean pooling written out as models/encoder_block.cpp computes them.
// Registers token_embedding, position_embedding, layer_l_*, final_norm_*, head_* and the
// attribute max_len.
ScriptInputs script_text_model(const inference::ScoringModel& model, torch::jit::Module& module);

// The backbone model (models::BackboneModelImpl: model.type backbone): logits(self, tokens
// [n, L] int64, mask [n, L] bool) -> [n, classes]. The TorchScript backbone is the submodule
// `backbone` (a trainable one with the weights its run trained), called through
// model.backbone.method with the mask in its declared dtype and pooled as model.backbone.output
// says; then FiLM, the tower with its LoRA updates and the head as models/backbone_model.cpp
// computes them. Registers film_*, tower_l_*, head_* and the attribute max_len.
ScriptInputs script_backbone_model(const inference::ScoringModel& model,
                                   torch::jit::Module& module);

}  // namespace ml::exporting
