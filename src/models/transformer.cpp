// The pre-norm Transformer encoder with a functional forward: see transformer.hpp.
#include "models/transformer.hpp"

#include <cmath>
#include <cstdio>

#include "models/encoder_block.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::models {

namespace {

using torch::Tensor;

constexpr std::size_t kPerLayer = kEncoderLayerTensors;
constexpr std::size_t kFirstLayer = 2;  // after the token and position embeddings

}  // namespace

double parameter_count(const TransformerShape& s) {
  const auto d = static_cast<double>(s.model_dim), ff = static_cast<double>(s.ff_dim);
  const double layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (ff * d + ff) + (d * ff + d);
  return (static_cast<double>(s.vocab_size) + static_cast<double>(s.max_len)) * d +
         static_cast<double>(s.layers) * layer + 2 * d + static_cast<double>(s.outputs) * (d + 1);
}

TokenBatch token_batch(const features::EncodedTexts& encoded) {
  const std::vector<std::int64_t> shape = {encoded.rows, encoded.max_len};
  TokenBatch b;
  b.ids = torch::tensor(encoded.ids, torch::kInt64).view(shape);
  b.mask = torch::tensor(std::vector<std::int64_t>(encoded.mask.begin(), encoded.mask.end()),
                         torch::kInt64)
               .view(shape)
               .ne(0);
  return b;
}

TransformerImpl::TransformerImpl(TransformerShape shape) : shape_(shape) {
  const auto& s = shape_;
  const std::pair<std::int64_t, const char*> sizes[] = {
      {s.vocab_size, "vocabulary size"},    {s.max_len, "maximum token length"},
      {s.model_dim, "model dimension"},     {s.heads, "number of attention heads"},
      {s.ff_dim, "feed-forward dimension"}, {s.outputs, "number of outputs"}};
  for (const auto& [value, what] : sizes)
    if (value < 1)
      throw ConfigError(std::string("the transformer's ") + what + " is " + std::to_string(value) +
                        "; it must be at least 1");
  if (s.layers < 0) throw ConfigError("the transformer's number of layers cannot be negative");
  if (s.model_dim % s.heads != 0)
    throw ConfigError("the transformer's model dimension " + std::to_string(s.model_dim) +
                      " is not a multiple of its " + std::to_string(s.heads) + " attention heads");
  const double n = parameter_count(s);
  if (n > static_cast<double>(config::kMaxModelParameters)) {
    char count[32];
    std::snprintf(count, sizeof count, "%.3g", n);
    throw ConfigError("the transformer would hold " + std::string(count) +
                      " parameters (vocabulary " + with_thousands(s.vocab_size) + ", dimension " +
                      std::to_string(s.model_dim) + ", " + std::to_string(s.layers) +
                      " layers); at most " + with_thousands(config::kMaxModelParameters) +
                      " fit: lower those sizes");
  }
  const std::int64_t d = s.model_dim;
  // Small normal embeddings (as BERT); linear layers as nn.Linear and the MLP (uniform in
  // +-1/sqrt(fan_in)); layer norms start as the identity.
  add("token_embedding", torch::randn({s.vocab_size, d}) * 0.02, ParamGroup::kEmbedding, -1);
  add("position_embedding", torch::randn({s.max_len, d}) * 0.02, ParamGroup::kEmbedding, -1);
  for (int l = 0; l < static_cast<int>(s.layers); ++l)
    for (auto& [name, value] :
         encoder_layer_parameters("layer_" + std::to_string(l) + "_", d, s.ff_dim))
      add(name, value, ParamGroup::kTower, l);
  for (auto& [name, value] : layer_norm_parameters("final_norm_", d))
    add(name, value, ParamGroup::kTower, -1);
  const double bound = 1.0 / std::sqrt(static_cast<double>(d));
  add("head_weight", torch::empty({s.outputs, d}).uniform_(-bound, bound), ParamGroup::kHead, -1);
  add("head_bias", torch::empty({s.outputs}).uniform_(-bound, bound), ParamGroup::kHead, -1);
}

void TransformerImpl::add(const std::string& name, Tensor value, ParamGroup group, int layer) {
  register_parameter(name, value);
  names_.push_back(name);
  groups_.push_back(group);
  ranks_.push_back(value.dim());
  layer_of_.push_back(layer);
}

Tensor TransformerImpl::encode(const TokenBatch& batch, const std::vector<Tensor>& p,
                               std::int64_t tasks, const StackedPrefix* resume,
                               std::int64_t stop_before) const {
  if (p.size() != names_.size())
    throw std::logic_error("the transformer got " + std::to_string(p.size()) +
                           " parameters for a layout of " + std::to_string(names_.size()));
  // The fused GELU kernel unless a gradient through it may be differentiated again: a
  // parameter that autograd tracks back to the meta-parameters (an adapted copy in
  // second-order MAML or Meta-SGD) gets the composed erf formula (exact_gelu: see there). Both
  // compute the same function; the fused one makes one pass over the widest activation
  // instead of five.
  bool composed_gelu = false;
  for (std::size_t i = 0; i < p.size() && !composed_gelu; ++i)
    composed_gelu = p[i].requires_grad() && p[i].grad_fn() != nullptr;
  if (tasks != 1) return run_encoder(batch, p, tasks, resume, stop_before, composed_gelu);
  // A stack of one task (MetaLearner::tasks_per_stack): its own parameters are plain ones, so
  // the shared paths serve it (layer norm's fused affine kernel, addmm with the bias fused).
  std::vector<Tensor> own(p);
  for (std::size_t i = 0; i < p.size(); ++i)
    if (per_task(i, p[i])) own[i] = p[i].select(0, 0);
  return run_encoder(batch, own, 0, resume, stop_before, composed_gelu);
}

Tensor TransformerImpl::run_encoder(const TokenBatch& batch, const std::vector<Tensor>& p,
                                    std::int64_t tasks, const StackedPrefix* resume,
                                    std::int64_t stop_before, bool composed_gelu) const {
  const std::int64_t L = batch.ids.size(-1);
  if (L > shape_.max_len)
    throw DataError("token sequences of length " + std::to_string(L) +
                    " exceed the transformer's maximum length " + std::to_string(shape_.max_len));
  const ParamView view(p, ranks_, tasks);
  Tensor x;
  std::int64_t first_layer = 0;
  if (resume != nullptr) {
    x = resume->hidden;
    first_layer = resume->resume_at;
  } else {
    x = view.embed(0, batch.ids);
    x = x + (view.task_wise(1) ? view.vec(1, x).narrow(-2, 0, L) : p[1].narrow(0, 0, L));
  }
  const Tensor score_bias = attention_bias(batch.mask.logical_not().unsqueeze(-2).unsqueeze(-2),
                                           shape_.heads, x.scalar_type());
  const EncoderSpec spec{shape_.heads, shape_.activation, composed_gelu};
  const std::int64_t last_layer = stop_before < 0 ? shape_.layers : stop_before;
  for (std::int64_t l = first_layer; l < last_layer; ++l) {
    const std::size_t base = kFirstLayer + static_cast<std::size_t>(l) * kPerLayer;
    x = encoder_layer(x, score_bias, view, base, spec);
  }
  if (stop_before >= 0) return x;
  const std::size_t final_norm = p.size() - 4;
  x = view.norm(x, final_norm);
  Tensor weight = batch.mask.to(x.scalar_type()).unsqueeze(-1);
  Tensor pooled = (x * weight).sum(-2) / weight.sum(-2).clamp_min(1.0);
  return pooled;
}

Tensor TransformerImpl::represent(const TokenBatch& batch, const std::vector<Tensor>& p) const {
  return encode(batch, p, 0, nullptr, -1);
}

Tensor TransformerImpl::represent_stacked(const TokenBatch& batch,
                                          const std::vector<Tensor>& p) const {
  return encode(batch, p, batch.ids.size(0), nullptr, -1);
}

Tensor TransformerImpl::forward(const TokenBatch& batch, const std::vector<Tensor>& p) const {
  const std::size_t head = p.size() - 2;
  return torch::addmm(p[head + 1], represent(batch, p), p[head].t());
}

Tensor TransformerImpl::forward_stacked(const TokenBatch& batch,
                                        const std::vector<Tensor>& p) const {
  return stacked_head(represent_stacked(batch, p), p);
}

Tensor TransformerImpl::stacked_head(const Tensor& pooled, const std::vector<Tensor>& p) const {
  const std::size_t head = p.size() - 2;
  const Tensor &w = p[head], &b = p[head + 1];
  Tensor y = per_task(head, w) ? pooled.matmul(w.transpose(-1, -2)) : pooled.matmul(w.t());
  return y + (per_task(head + 1, b) ? b.unsqueeze(1) : b);
}

namespace {

TokenBatch tokens_of(const Tensor& tokens, const Tensor& mask) {
  if (!tokens.defined())
    throw DataError(
        "the transformer reads text (a text run: data.text.column); this batch holds "
        "features");
  return {tokens, mask};
}

}  // namespace

TransformerShape transformer_shape(const config::Config& config, std::int64_t vocab_size,
                                   std::int64_t outputs) {
  const auto& t = config.model.transformer;
  TransformerShape s;
  s.vocab_size = vocab_size;
  s.max_len = t.max_len;
  s.model_dim = t.dim;
  s.heads = t.heads;
  s.layers = t.layers;
  s.ff_dim = t.ff_dim;
  s.outputs = outputs;
  s.activation = t.activation;
  return s;
}

double TransformerImpl::activation_values(std::int64_t rows) const {
  // Per token: the attention's input projection (d -> 3d) or the feed-forward block (d -> ff).
  const auto d = static_cast<double>(shape_.model_dim);
  const double widest = std::max(3 * d, static_cast<double>(shape_.ff_dim));
  return static_cast<double>(rows) * static_cast<double>(shape_.max_len) * widest;
}

double TransformerImpl::largest_product(std::int64_t rows) const {
  return activation_values(rows) * static_cast<double>(shape_.model_dim);
}

Tensor TransformerImpl::forward(const Batch& batch, const std::vector<Tensor>& p) const {
  return forward(tokens_of(batch.tokens, batch.mask), p);
}

Tensor TransformerImpl::represent(const Batch& batch, const std::vector<Tensor>& p) const {
  return represent(tokens_of(batch.tokens, batch.mask), p);
}

Tensor TransformerImpl::forward_stacked(const StackedBatch& batch,
                                        const std::vector<Tensor>& p) const {
  return forward_stacked(tokens_of(batch.tokens, batch.mask), p);
}

Tensor TransformerImpl::represent_stacked(const StackedBatch& batch,
                                          const std::vector<Tensor>& p) const {
  return represent_stacked(tokens_of(batch.tokens, batch.mask), p);
}

StackedPrefix TransformerImpl::stacked_prefix(const StackedBatch& batch,
                                              const std::vector<Tensor>& p,
                                              std::size_t first_adapted) const {
  // Encoder layers wholly below the first adapted parameter; the final norm and the head
  // (layer_of -1 after the layers) leave every layer below.
  std::int64_t frozen_layers = shape_.layers;
  if (first_adapted < layer_of_.size()) {
    const int layer = layer_of_[first_adapted];
    if (layer >= 0)
      frozen_layers = layer;
    else if (first_adapted < kFirstLayer)
      frozen_layers = 0;
  }
  // Below one layer, only the embedding gather would be saved: not worth a second code path.
  if (frozen_layers < 1) return {};
  const TokenBatch tokens = tokens_of(batch.tokens, batch.mask);
  return {encode(tokens, p, tokens.ids.size(0), nullptr, frozen_layers), frozen_layers};
}

Tensor TransformerImpl::forward_stacked_from(const StackedPrefix& prefix, const StackedBatch& batch,
                                             const std::vector<Tensor>& p) const {
  if (!prefix.defined()) return forward_stacked(batch, p);
  const TokenBatch tokens = tokens_of(batch.tokens, batch.mask);
  return stacked_head(encode(tokens, p, tokens.ids.size(0), &prefix, -1), p);
}

std::vector<bool> layer_adapt_mask(const TransformerImpl& model, const std::vector<int>& layers) {
  const auto count = static_cast<int>(model.shape().layers);
  std::vector<bool> chosen(static_cast<std::size_t>(count), false);
  for (int l : layers) {
    if (l < -count || l >= count)
      throw ConfigError("the transformer has no encoder layer " + std::to_string(l) + " (it has " +
                        std::to_string(count) + ": 0 to " + std::to_string(count - 1) +
                        ", or -1 for the last)");
    chosen[static_cast<std::size_t>(l < 0 ? l + count : l)] = true;
  }
  std::vector<bool> mask;
  for (std::size_t i = 0; i < model.groups().size(); ++i) {
    const int layer = model.layer_of()[i];
    mask.push_back(model.groups()[i] == ParamGroup::kHead ||
                   (layer >= 0 && chosen[static_cast<std::size_t>(layer)]));
  }
  return mask;
}

}  // namespace ml::models
