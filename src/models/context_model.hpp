// The embedding_mlp with what an example's feature vector cannot say: its item's text through a
// subword Transformer encoder (model.item_text) and its user's recent items through causal
// self-attention (model.user_sequence, SASRec: Kang & McAuley 2018, arXiv:1808.09781). Both
// encoders run the shared encoder layer (models/encoder_block.hpp) and their outputs join the
// dense features at the tower's input, so the tower and head are the embedding_mlp's own
// (models/model.hpp), with the functional forward of models::Network.
//
// Parameter layout (names()):
//   the embedding_mlp's id tables embedding_k [rows, e]                  group kEmbedding
//   item text (model.item_text, width t):                                group kEmbedding
//     item_text_token_embedding [vocab, t], item_text_position_embedding [max_len, t],
//     item_text_layer_l_* (encoder_block.hpp's 12 per layer), item_text_final_norm_{weight,bias}
//   user sequence (model.user_sequence, width e = model.embedding_dim):  group kEmbedding
//     user_sequence_position_embedding [L + 1, e], user_sequence_readout [e],
//     user_sequence_layer_l_*, user_sequence_final_norm_{weight,bias}
//   the embedding_mlp's tower_l_{weight,bias} (kTower) and head_{weight,bias} (kHead), the
//   first tower layer reading [dense features, id embeddings, item text t, user sequence e].
//
// Why the encoders are kEmbedding: they turn an id or a text into a representation, as the id
// tables do, and are learned across tasks in the outer loop; an inner loop of a few steps on ten
// rows cannot retune them usefully, and second-order MAML through them per task would multiply
// the cost. So meta.inner_params = "dense" (the default) adapts the tower and head over fixed
// encodings, "head" the head, and "all" adapts the encoders per task too.
//
// Item text: each task's distinct items (Batch::item_tokens) are encoded once and gathered per
// row (Batch::item_slot); the representation is the final norm's output averaged over the real
// tokens (zero for an item without text). User sequence: the user's last L items' embeddings
// from the shared item-id table (id field kItemIdField, as Batch::history), left-padded, then a
// learned read-out token in the last position, plus position embeddings; causal attention with
// padded keys masked; the read-out token's final output is the representation. With no history
// the token attends to itself alone: a learned "no history" value, never NaN (a masked score is
// finite, encoder_block.hpp).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "models/encoder_block.hpp"
#include "models/model.hpp"
#include "models/network.hpp"

namespace ml::models {

struct ContextShape {
  ModelShape mlp;  // the embedding_mlp; mlp.dense_dim counts the feature vector alone
  // Item text: 0 vocabulary is no encoder.
  std::int64_t text_vocab = 0, text_dim = 32, text_layers = 1, text_heads = 2, text_ff = 64,
               text_max_len = 16;
  // User sequence: length 0 is no encoder. Its width is mlp.embedding_dim.
  std::int64_t sequence_length = 0, sequence_layers = 1, sequence_heads = 2, sequence_ff = 64;
};

// The shape model.item_text and model.user_sequence ask for around `mlp`, with the item-text
// tokenizer's `text_vocab` ids (0 without item text).
ContextShape context_shape(const config::Config& config, const ModelShape& mlp,
                           std::int64_t text_vocab);

class ContextModelImpl : public Network {
 public:
  // ConfigError for sizes that cannot be built (a width not a multiple of its heads) or that
  // would hold more than config::kMaxModelParameters.
  explicit ContextModelImpl(ContextShape shape);

  const ContextShape& shape() const { return shape_; }
  const std::vector<ParamGroup>& groups() const override { return groups_; }
  const std::vector<std::string>& names() const override { return names_; }
  std::int64_t outputs() const override { return shape_.mlp.outputs; }
  // The embedding_mlp's id tables (the user sequence reads the item table's rows too).
  std::size_t id_tables() const override { return mlp_->id_tables(); }
  double largest_product(std::int64_t rows) const override;

  // As models::Network; DataError for a batch without the user sequences or item texts the
  // model reads (Batch::history, Batch::item_tokens).
  torch::Tensor forward(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent(const Batch& batch, const std::vector<torch::Tensor>& p) const override;
  torch::Tensor forward_stacked(const StackedBatch& batch,
                                const std::vector<torch::Tensor>& p) const override;
  torch::Tensor represent_stacked(const StackedBatch& batch,
                                  const std::vector<torch::Tensor>& p) const override;
  bool per_task(std::size_t i, const torch::Tensor& value) const override {
    return value.dim() > ranks_[i];
  }
  // The tower's input (the dense features widened by both encoders' outputs), which an inner
  // loop adapting nothing below the tower (meta.inner_params "dense" or "head") computes once.
  StackedPrefix stacked_prefix(const StackedBatch& batch, const std::vector<torch::Tensor>& p,
                               std::size_t first_adapted) const override;
  torch::Tensor forward_stacked_from(const StackedPrefix& prefix, const StackedBatch& batch,
                                     const std::vector<torch::Tensor>& p) const override;

  // The encoders' outputs for a stacked batch: item text [T, n, text_dim] and user sequence
  // [T, n, embedding_dim] (undefined when the model has no such encoder).
  torch::Tensor item_text_stacked(const StackedBatch& batch,
                                  const std::vector<torch::Tensor>& p) const;
  torch::Tensor user_sequence_stacked(const StackedBatch& batch,
                                      const std::vector<torch::Tensor>& p) const;

 private:
  void add(const std::string& name, torch::Tensor value, ParamGroup group);
  // The batch the embedding_mlp reads (dense features widened by the encoders' outputs) and the
  // embedding_mlp's share of `p`.
  StackedBatch tower_batch(const StackedBatch& batch, const std::vector<torch::Tensor>& p) const;
  std::vector<torch::Tensor> mlp_params(const std::vector<torch::Tensor>& p) const;

  ContextShape shape_;
  std::shared_ptr<FunctionalModelImpl> mlp_;  // its functional forward only; not a submodule
  std::vector<std::size_t> mlp_index_;        // the embedding_mlp's parameter i is p[mlp_index_[i]]
  std::size_t text_first_ = 0, sequence_first_ = 0;  // first parameter of each encoder
  std::vector<ParamGroup> groups_;
  std::vector<std::string> names_;
  std::vector<std::int64_t> ranks_;
};
TORCH_MODULE(ContextModel);

}  // namespace ml::models
