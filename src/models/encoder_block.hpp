// The pre-norm Transformer encoder layer (Vaswani et al. 2017, arXiv:1706.03762; pre-norm as in
// Xiong et al. 2020, arXiv:2002.04745) as a function of explicit parameters, over any embedded
// sequence: the text transformer's layers (models/transformer.hpp) and the encoders of item
// titles and user item sequences (models/context_model.hpp) run this one code. Attention, layer
// norm and the feed-forward block are plain tensor ops (baddbmm, bmm, softmax, layer_norm),
// which autograd differentiates twice (second-order MAML through attention).
//
// A layer's 12 tensors, in layout order (encoder_layer_parameters gives them initialised):
//   norm1_{weight,bias} [d], attention_in_{weight [3d, d], bias [3d]},
//   attention_out_{weight [d, d], bias [d]}, norm2_{weight,bias} [d],
//   ff1_{weight [ff, d], bias [ff]}, ff2_{weight [d, ff], bias [d]}
// It computes x += attention(norm1(x)); x += ff2(act(ff1(norm2(x)))).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/choices.hpp"

namespace ml::models {

// Tensors per encoder layer, and each one's slot in a layer's run of the parameter layout.
inline constexpr std::size_t kEncoderLayerTensors = 12;
enum EncoderSlot : std::size_t {
  kNorm1 = 0,         // weight, bias
  kAttentionIn = 2,   // weight [3d, d], bias
  kAttentionOut = 4,  // weight [d, d], bias
  kNorm2 = 6,
  kFf1 = 8,
  kFf2 = 10,
};

// Added to a masked attention score: its softmax weight is then exactly 0 in float and double
// (a finite value, unlike -inf, keeps a row whose keys are all masked free of NaN).
inline constexpr double kMaskedScore = -1e9;

// One layer's tensors named "<prefix>norm1_weight" ... "<prefix>ff2_bias", in layout order:
// linear layers uniform in +-1/sqrt(fan_in) (nn.Linear's default), norms the identity.
std::vector<std::pair<std::string, torch::Tensor>> encoder_layer_parameters(
    const std::string& prefix, std::int64_t dim, std::int64_t ff_dim);

// A layer norm's tensors named "<prefix>weight" / "<prefix>bias" (ones, zeros).
std::vector<std::pair<std::string, torch::Tensor>> layer_norm_parameters(const std::string& prefix,
                                                                         std::int64_t dim);

// A parameter list `p` read by a functional forward over activations [B..., ...], where B... is
// [n] or, with `tasks` > 0, [T, n]: each p[i] is either shared (its own rank, ranks[i]) or given
// per task (one more, leading, dimension T), as models::Network::per_task says.
class ParamView {
 public:
  ParamView(const std::vector<torch::Tensor>& p, const std::vector<std::int64_t>& ranks,
            std::int64_t tasks)
      : p_(p), ranks_(ranks), tasks_(tasks) {}

  const torch::Tensor& operator[](std::size_t i) const { return p_[i]; }
  std::int64_t tasks() const { return tasks_; }
  bool task_wise(std::size_t i) const { return tasks_ > 0 && p_[i].dim() > ranks_[i]; }
  // A vector parameter (bias, norm gain) broadcast against x.
  torch::Tensor vec(std::size_t i, const torch::Tensor& x) const;
  // x [B..., in] by the linear layer whose weight is p[w] and bias p[w + 1]: [B..., out].
  torch::Tensor linear(const torch::Tensor& x, std::size_t w) const;
  // Layer norm over the last dimension (Ba et al. 2016), eps 1e-5, gain p[w], bias p[w + 1].
  torch::Tensor norm(const torch::Tensor& x, std::size_t w) const;
  // Rows of the table p[i] ([rows, d], or [T, rows, d] per task) at `ids` [T, ...].
  torch::Tensor embed(std::size_t i, const torch::Tensor& ids) const;

 private:
  const std::vector<torch::Tensor>& p_;
  const std::vector<std::int64_t>& ranks_;
  std::int64_t tasks_;
};

// The shape of the encoder layers a model runs.
struct EncoderSpec {
  std::int64_t heads = 1;
  config::Activation activation = config::Activation::kGelu;
  // GELU as the composed erf formula (exact_gelu), which a gradient through it may be
  // differentiated again through (second-order MAML), or as torch's fused kernel (one pass
  // over the activation instead of five) where none will be.
  bool composed_gelu = true;
};

// The scores' additive mask for encoder_layer from `masked` ([B..., 1, Lq, L] bool, Lq 1 or L:
// true where a query may not attend to a key: key padding, and for causal self-attention also
// every later key): kMaskedScore there and 0 elsewhere, as [B... · heads, Lq, L] of `dtype`.
// Built once per forward pass, it is added by the product that computes the scores.
torch::Tensor attention_bias(const torch::Tensor& masked, std::int64_t heads,
                             torch::ScalarType dtype);

// One encoder layer over x [B..., L, d] with its 12 tensors from p[first] on; `score_bias` from
// attention_bias(). The scores are one baddbmm (scale and mask folded in), which saves two
// passes over them and their gradients against matmul, mul and masked_fill.
torch::Tensor encoder_layer(const torch::Tensor& x, const torch::Tensor& score_bias,
                            const ParamView& p, std::size_t first, const EncoderSpec& spec);

// [L, L] bool, true above the diagonal: the keys after each query (causal self-attention).
torch::Tensor later_keys(std::int64_t length, const torch::Device& device);

// GELU in its exact erf form (Hendrycks & Gimpel 2016), the function torch::gelu computes,
// written out: LibTorch 1.13's fused GELU backward gave NaN meta-gradients at random in
// second-order MAML on the CPU (the same batch gave finite ones on other runs: memory, not the
// values), while autograd composes erf's derivatives reliably.
torch::Tensor exact_gelu(const torch::Tensor& x);

}  // namespace ml::models
