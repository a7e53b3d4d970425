// The `transformer` model of text tasks: a pre-norm Transformer encoder (Vaswani et al. 2017,
// arXiv:1706.03762; pre-norm as in Xiong et al. 2020, arXiv:2002.04745) over token ids, with the
// functional forward of models/model.hpp: parameters are passed in explicitly, so an inner loop
// runs it with adapted weights and second-order MAML differentiates through the attention.
// Attention, layer norm and pooling are plain tensor ops (matmul, softmax, masked_fill,
// layer_norm, mean), which autograd differentiates twice.
//
// Parameter layout (names()):
//   token_embedding [vocab, d], position_embedding [max_len, d]         group kEmbedding
//   per encoder layer l (layer_of() = l), 12 tensors:                    group kTower
//     layer_l_norm1_{weight,bias} [d], layer_l_attention_in_{weight [3d, d], bias [3d]},
//     layer_l_attention_out_{weight [d, d], bias [d]}, layer_l_norm2_{weight,bias} [d],
//     layer_l_ff1_{weight [ff, d], bias [ff]}, layer_l_ff2_{weight [d, ff], bias [d]}
//   final_norm_{weight,bias} [d]                                         group kTower
//   head_weight [outputs, d], head_bias [outputs]                        group kHead
// A layer computes x += attention(norm1(x)); x += ff2(act(ff1(norm2(x)))) (the one encoder layer
// of models/encoder_block.hpp, which the item-text and user-sequence encoders run too). The
// representation is final_norm(x) averaged over the unmasked tokens; the head is linear on it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "features/tokenizer.hpp"
#include "models/model.hpp"

namespace ml::models {

using Activation = config::Activation;  // model.transformer.activation

struct TransformerShape {
  std::int64_t vocab_size = 0;  // token embedding rows: features::Tokenizer::vocab_size()
  std::int64_t max_len = 64;    // position embedding rows: the longest sequence accepted
  std::int64_t model_dim = 64;  // d; a multiple of heads
  std::int64_t heads = 4;
  std::int64_t layers = 2;
  std::int64_t ff_dim = 128;
  std::int64_t outputs = 1;  // 1 (binary logit, regression) or N (N-way)
  Activation activation = Activation::kGelu;
};

// Parameters of `shape` (in double: the sizes come from a config).
double parameter_count(const TransformerShape& shape);

// Token ids and attention mask as tensors: ids int64, mask bool (true on real tokens), both
// [n, max_len], or [T, n, max_len] for a stack of T tasks.
struct TokenBatch {
  torch::Tensor ids;
  torch::Tensor mask;
};

// The tensors of an encoded batch (copies; CPU).
TokenBatch token_batch(const features::EncodedTexts& encoded);

// The shape config.model.transformer asks for over a tokenizer's vocabulary, with `outputs`
// outputs (task.label.ways for a text run).
TransformerShape transformer_shape(const config::Config& config, std::int64_t vocab_size,
                                   std::int64_t outputs);

class TransformerImpl : public Network {
 public:
  // ConfigError for a shape that cannot be built (d not a multiple of heads, a size < 1) or
  // that would hold more than config::kMaxModelParameters.
  explicit TransformerImpl(TransformerShape shape);

  const std::vector<ParamGroup>& groups() const override { return groups_; }
  const std::vector<std::string>& names() const override { return names_; }
  std::int64_t outputs() const override { return shape_.outputs; }
  // None: the token and position tables are dense parameters to the algorithms (an adapted
  // copy per task when the inner loop adapts embeddings).
  std::size_t id_tables() const override { return 0; }
  double largest_product(std::int64_t rows) const override;
  // rows · max_len · max(3d, ff): the attention's input projection or the feed-forward block.
  double activation_values(std::int64_t rows) const override;

  // models::Network over token batches (Batch::tokens and Batch::mask); DataError for a batch
  // without tokens.
  torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor forward_stacked(const StackedBatch& batch,
                                const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent_stacked(const StackedBatch& batch,
                                  const std::vector<torch::Tensor>& p) const override;
  // The encoder layer each parameter belongs to; -1 for embeddings, final norm and head.
  const std::vector<int>& layer_of() const { return layer_of_; }
  const TransformerShape& shape() const { return shape_; }

  // Outputs [n, outputs] of tokens [n, L] (L <= max_len) computed with `p` in place of the
  // module's own parameters. Padded positions (mask false) change nothing: they are masked as
  // attention keys and left out of the pooling. A row with no real token pools to zeros.
  torch::Tensor forward(const TokenBatch& batch, const std::vector<torch::Tensor>& p) const;
  // The pooled representation the head reads: [n, d] (prototypes are built on it).
  torch::Tensor represent(const TokenBatch& batch, const std::vector<torch::Tensor>& p) const;

  // Outputs [T, n, outputs] of a stack of T tasks (batch [T, n, L]) in one pass. Each p[i] is
  // either shared by every task (the parameter's own shape) or per task (a leading T
  // dimension: the task's adapted copy, embeddings included).
  torch::Tensor forward_stacked(const TokenBatch& batch, const std::vector<torch::Tensor>& p) const;
  torch::Tensor represent_stacked(const TokenBatch& batch,
                                  const std::vector<torch::Tensor>& p) const;
  // Whether p[i] is given per task (it has one more dimension than the parameter).
  bool per_task(std::size_t i, const torch::Tensor& value) const override {
    return value.dim() > ranks_[i];
  }
  // The embeddings and the encoder layers below the one holding p[first_adapted] ([T, n, L, d]
  // before the next layer); every layer when only the final norm or the head adapt.
  StackedPrefix stacked_prefix(const StackedBatch& batch, const std::vector<torch::Tensor>& p,
                               std::size_t first_adapted) const override;
  torch::Tensor forward_stacked_from(const StackedPrefix& prefix, const StackedBatch& batch,
                                     const std::vector<torch::Tensor>& p) const override;

 private:
  void add(const std::string& name, torch::Tensor value, ParamGroup group, int layer);
  // The encoder over ids [B..., L], where B... is [n] or, with `tasks` > 0, [T, n]: pooled
  // [B..., d]; or, with `stop_before` >= 0, the hidden state [B..., L, d] before that layer.
  // `resume` starts from a stacked_prefix() instead of the embeddings.
  torch::Tensor encode(const TokenBatch& batch, const std::vector<torch::Tensor>& p,
                       std::int64_t tasks, const StackedPrefix* resume,
                       std::int64_t stop_before) const;
  // encode() once it has chosen the activation's form and viewed a stack of one task's
  // parameters as plain ones.
  torch::Tensor run_encoder(const TokenBatch& batch, const std::vector<torch::Tensor>& p,
                            std::int64_t tasks, const StackedPrefix* resume,
                            std::int64_t stop_before, bool composed_gelu) const;
  // The head on pooled representations [T, n, d] -> [T, n, outputs].
  torch::Tensor stacked_head(const torch::Tensor& pooled,
                             const std::vector<torch::Tensor>& p) const;
  TransformerShape shape_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> names_;
  std::vector<std::int64_t> ranks_;
  std::vector<int> layer_of_;
};
TORCH_MODULE(Transformer);

// The head plus the encoder layers listed (0 is the first; -1 the last, -2 the one before):
// adapting only the top of the encoder. ConfigError naming a layer the model does not have.
std::vector<bool> layer_adapt_mask(const TransformerImpl& model, const std::vector<int>& layers);

}  // namespace ml::models
