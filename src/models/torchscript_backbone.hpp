// A pretrained text encoder saved as TorchScript (torch.jit.script / torch.jit.trace, then
// torch.jit.save), loaded with torch::jit::load as the backbone of model.type = "backbone": token
// ids (and an attention mask) in, one vector per text out. Its inputs and output are declared
// in the config (model.backbone) and checked on load by running it once on a small batch, so a
// module of another shape is one clear error instead of a failure inside the first episode.
//
// A trainable backbone is meta-trained in the outer loop: encode() runs it with the weights a
// meta-gradient is taken with respect to (each chunk of a meta-batch has leaves of its own) by
// giving each call its own shallow copy of the module's object tree with those tensors in the
// parameter slots. The module itself is never changed, so calls from several threads are safe.
//
// TorchScript's graph optimiser is turned off for the process on load: its differentiable
// subgraphs (fused autodiff nodes) do not support the double backward second-order MAML takes
// through a backbone's output, and plain interpretation records ordinary autograd nodes.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ml::models {

class TorchScriptBackbone {
 public:
  // Loads config.model.backbone.file onto `device` and checks it against the config: DataError
  // naming the file for a file that cannot be read or is not a TorchScript module, a module
  // without model.backbone.method, one taking another number of inputs than
  // model.backbone.inputs declares, or one whose output
  // on a probe batch (2 texts of max_len tokens) is not a float tensor [2, dim] (output
  // "pooled") or [2, max_len, dim] ("mean", "first"); its own error text is kept. A frozen
  // backbone's parameters stop requiring gradients; it runs in eval mode (dropout off) either
  // way. `expected_checksum`, when not 0, is the checksum a checkpoint recorded: a file with
  // another one is a DataError (the file changed since training; exit 4, as for a changed
  // embedding table). `vocabulary`, when given (the tokenizer's vocab_size()), is what the
  // probe's ids reach: a backbone whose token table is smaller fails here, not in the first
  // episode. Probe outputs that are NaN or Inf are a DataError too.
  static std::shared_ptr<TorchScriptBackbone> load(const config::Config& config,
                                                   const torch::Device& device,
                                                   std::uint64_t expected_checksum = 0,
                                                   std::int64_t vocabulary = 0);

  // A backbone with its own copy of every tensor: a trainable backbone's weights belong to the
  // one model that trains them (BackboneModelImpl takes one).
  std::shared_ptr<TorchScriptBackbone> deep_copy() const;

  std::int64_t dim() const { return dim_; }
  // The module itself, for `metalearn export` (which embeds it as a submodule); a trainable
  // backbone's holds the weights the model trains.
  const torch::jit::Module& module() const { return module_; }
  const std::string& method() const { return method_; }
  bool trainable() const { return trainable_; }
  const std::string& file() const { return file_; }
  // XXH3-64 of the file's bytes (util/checksum.hpp).
  std::uint64_t checksum() const { return checksum_; }
  // The module's parameters (recursively), named as in named_parameters() ("layer.0.weight").
  const std::vector<std::string>& parameter_names() const { return names_; }
  std::vector<torch::Tensor> parameters() const;

  // Vectors [n, dim] float32 of ids [n, L] int64 and mask [n, L] bool (true on real tokens),
  // L <= max_len, run with `weights` in place of the module's parameters when given (in
  // parameter_names() order; the module's own otherwise). Differentiable with respect to
  // `weights` when the backbone is trainable; otherwise computed without a graph. A module that
  // fails is a DataError naming the file and the module's own exception.
  torch::Tensor encode(const torch::Tensor& ids, const torch::Tensor& mask,
                       const std::vector<torch::Tensor>* weights = nullptr) const;
  // encode() of every row without a graph, `rows_per_pass` rows at a time, each pass cut to its
  // longest text: a frozen backbone's vectors of a whole dataset, computed once. DataError when
  // a vector holds NaN or Inf.
  torch::Tensor encode_all(const torch::Tensor& ids, const torch::Tensor& mask,
                           std::int64_t rows_per_pass = 256) const;

 private:
  TorchScriptBackbone() = default;
  // The mask in model.backbone.mask's dtype.
  torch::Tensor typed_mask(const torch::Tensor& mask) const;
  torch::Tensor run(torch::jit::Module& module, const torch::Tensor& ids,
                    const torch::Tensor& mask) const;

  torch::jit::Module module_;
  std::string file_;
  std::string method_ = "forward";
  std::uint64_t checksum_ = 0;
  std::vector<std::string> names_;
  std::int64_t dim_ = 0;
  bool trainable_ = false;
  config::BackboneInputs inputs_ = config::BackboneInputs::kIdsMask;
  config::MaskType mask_type_ = config::MaskType::kBool;
  config::BackboneOutput output_ = config::BackboneOutput::kPooled;
};

}  // namespace ml::models
