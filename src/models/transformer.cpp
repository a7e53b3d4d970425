// The pre-norm Transformer encoder with a functional forward: see transformer.hpp.
#include "models/transformer.hpp"

#include <cmath>
#include <cstdio>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::models {

namespace {

using torch::Tensor;

// Tensors per encoder layer, in layout order (transformer.hpp).
constexpr std::size_t kPerLayer = 12;
enum LayerSlot : std::size_t {
  kNorm1 = 0,         // weight, bias
  kAttentionIn = 2,   // weight [3d, d], bias
  kAttentionOut = 4,  // weight [d, d], bias
  kNorm2 = 6,
  kFf1 = 8,
  kFf2 = 10,
};
constexpr std::size_t kFirstLayer = 2;  // after the token and position embeddings

// Added to a padded key's score: its softmax weight is then exactly 0 in float and double (a
// finite value, unlike -inf, keeps a row whose keys are all padding free of NaN).
constexpr double kMaskedScore = -1e9;

// A per-task tensor [T, ...] with singleton dimensions inserted after T until it has `rank`
// dimensions, so that it broadcasts against activations [T, n, ...].
Tensor for_tasks(const Tensor& t, std::int64_t rank) {
  std::vector<std::int64_t> shape = t.sizes().vec();
  shape.insert(shape.begin() + 1, static_cast<std::size_t>(rank - t.dim()), 1);
  return t.view(shape);
}

// GELU in its exact erf form (Hendrycks & Gimpel 2016), the function torch::gelu computes,
// written out: LibTorch 1.13's fused GELU backward gave NaN meta-gradients at random in
// second-order MAML on the CPU (the same batch gave finite ones on other runs: memory, not the
// values), while autograd composes erf's derivatives reliably.
Tensor exact_gelu(const Tensor& x) {
  return 0.5 * x * (1 + torch::erf(x * M_SQRT1_2));
}

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
  auto linear = [&](const std::string& name, std::int64_t fan_in, std::int64_t fan_out,
                    ParamGroup group, int layer) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    add(name + "_weight", torch::empty({fan_out, fan_in}).uniform_(-bound, bound), group, layer);
    add(name + "_bias", torch::empty({fan_out}).uniform_(-bound, bound), group, layer);
  };
  auto norm = [&](const std::string& name, int layer) {
    add(name + "_weight", torch::ones({d}), ParamGroup::kTower, layer);
    add(name + "_bias", torch::zeros({d}), ParamGroup::kTower, layer);
  };
  for (int l = 0; l < static_cast<int>(s.layers); ++l) {
    const std::string prefix = "layer_" + std::to_string(l) + "_";
    norm(prefix + "norm1", l);
    linear(prefix + "attention_in", d, 3 * d, ParamGroup::kTower, l);
    linear(prefix + "attention_out", d, d, ParamGroup::kTower, l);
    norm(prefix + "norm2", l);
    linear(prefix + "ff1", d, s.ff_dim, ParamGroup::kTower, l);
    linear(prefix + "ff2", s.ff_dim, d, ParamGroup::kTower, l);
  }
  norm("final_norm", -1);
  linear("head", d, s.outputs, ParamGroup::kHead, -1);
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
  const std::int64_t L = batch.ids.size(-1), d = shape_.model_dim;
  if (L > shape_.max_len)
    throw DataError("token sequences of length " + std::to_string(L) +
                    " exceed the transformer's maximum length " + std::to_string(shape_.max_len));
  const auto task_wise = [&](std::size_t i) { return tasks > 0 && per_task(i, p[i]); };
  // A vector parameter (bias, norm gain) broadcast against x.
  const auto vec = [&](std::size_t i, const Tensor& x) {
    return task_wise(i) ? for_tasks(p[i], x.dim()) : p[i];
  };
  // Rows flattened into one product with the bias fused in: a broadcasting matmul of x
  // [T, n, L, in] by per-task weights [T, 1, in, out] would copy each task's weight n times.
  const auto linear = [&](const Tensor& x, std::size_t w) {
    std::vector<std::int64_t> out_shape = x.sizes().vec();
    out_shape.back() = p[w].size(-2);
    if (task_wise(w)) {
      Tensor bias = task_wise(w + 1) ? p[w + 1].unsqueeze(1) : p[w + 1];
      return torch::baddbmm(bias, x.reshape({tasks, -1, x.size(-1)}), p[w].transpose(-1, -2))
          .view(out_shape);
    }
    if (task_wise(w + 1)) return x.matmul(p[w].t()) + vec(w + 1, x);
    return torch::addmm(p[w + 1], x.reshape({-1, x.size(-1)}), p[w].t()).view(out_shape);
  };
  // Layer norm over the last dimension (Ba et al. 2016), eps 1e-5, as torch's fused kernel
  // (twice differentiable); a per-task gain and bias are applied after it.
  const auto norm = [&](const Tensor& x, std::size_t w) {
    if (!task_wise(w) && !task_wise(w + 1)) return torch::layer_norm(x, {d}, p[w], p[w + 1], 1e-5);
    return torch::layer_norm(x, {d}, {}, {}, 1e-5) * vec(w, x) + vec(w + 1, x);
  };
  const auto activation = [&](const Tensor& x) {
    if (shape_.activation == Activation::kRelu) return torch::relu(x);
    return composed_gelu ? exact_gelu(x) : torch::gelu(x);
  };

  Tensor x;
  std::int64_t first_layer = 0;
  if (resume != nullptr) {
    x = resume->hidden;
    first_layer = resume->resume_at;
  } else if (task_wise(0)) {
    // One gather over every task's table: row j of task t is row t * V + j of [T * V, d].
    const std::int64_t V = p[0].size(1);
    Tensor offset = torch::arange(tasks, batch.ids.options()).mul_(V).view({tasks, 1, 1});
    x = torch::embedding(p[0].reshape({tasks * V, d}), batch.ids + offset);
  } else {
    x = torch::embedding(p[0], batch.ids);
  }
  if (resume == nullptr)
    x = x + (task_wise(1) ? for_tasks(p[1].narrow(1, 0, L), x.dim()) : p[1].narrow(0, 0, L));

  const std::int64_t h = shape_.heads, dh = d / h;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  // [B..., L, d] -> [B..., h, L, dh]
  const auto split_heads = [&](const Tensor& t) {
    std::vector<std::int64_t> shape = t.sizes().vec();
    shape.back() = h;
    shape.push_back(dh);
    return t.reshape(shape).transpose(-2, -3);
  };
  // -1e9 on padded keys, per (row, head) of the scores [B... · h, L, L]: added by the same
  // baddbmm that computes them (scale · q kᵀ), which saves two passes over the scores and
  // their gradients against matmul, mul and masked_fill.
  std::vector<std::int64_t> key_shape = batch.mask.sizes().vec();
  key_shape.insert(key_shape.end() - 1, {h, 1});
  const Tensor key_bias = batch.mask.logical_not()
                              .to(x.scalar_type())
                              .mul_(kMaskedScore)
                              .unsqueeze(-2)
                              .unsqueeze(-2)
                              .expand(key_shape)
                              .reshape({-1, 1, L});
  // [B..., h, L, dh] -> [B... · h, L, dh]
  const auto fold = [&](const Tensor& t) { return t.reshape({-1, L, dh}); };
  const std::int64_t last_layer = stop_before < 0 ? shape_.layers : stop_before;
  for (std::int64_t l = first_layer; l < last_layer; ++l) {
    const std::size_t base = kFirstLayer + static_cast<std::size_t>(l) * kPerLayer;
    const std::vector<Tensor> qkv =
        linear(norm(x, base + kNorm1), base + kAttentionIn).chunk(3, -1);
    Tensor scores = torch::baddbmm(key_bias, fold(split_heads(qkv[0])),
                                   fold(split_heads(qkv[1])).transpose(-1, -2), 1.0, scale);
    Tensor context = torch::bmm(torch::softmax(scores, -1), fold(split_heads(qkv[2])));
    std::vector<std::int64_t> head_shape = x.sizes().vec();
    head_shape.back() = dh;
    head_shape.insert(head_shape.end() - 2, h);
    context = context.view(head_shape).transpose(-2, -3).reshape(x.sizes());
    x = x + linear(context, base + kAttentionOut);
    Tensor hidden = activation(linear(norm(x, base + kNorm2), base + kFf1));
    x = x + linear(hidden, base + kFf2);
  }
  if (stop_before >= 0) return x;
  const std::size_t final_norm = p.size() - 4;
  x = norm(x, final_norm);
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
