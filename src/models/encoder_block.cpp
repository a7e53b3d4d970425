// The functional pre-norm encoder layer: see encoder_block.hpp.
#include "models/encoder_block.hpp"

#include <cmath>

namespace ml::models {

using torch::Tensor;

namespace {

// A per-task tensor [T, ...] with singleton dimensions inserted after T until it has `rank`
// dimensions, so that it broadcasts against activations [T, n, ...].
Tensor for_tasks(const Tensor& t, std::int64_t rank) {
  std::vector<std::int64_t> shape = t.sizes().vec();
  shape.insert(shape.begin() + 1, static_cast<std::size_t>(rank - t.dim()), 1);
  return t.view(shape);
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> encoder_layer_parameters(const std::string& prefix,
                                                                     std::int64_t dim,
                                                                     std::int64_t ff_dim) {
  std::vector<std::pair<std::string, Tensor>> out;
  auto linear = [&](const std::string& name, std::int64_t fan_in, std::int64_t fan_out) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    out.emplace_back(prefix + name + "_weight",
                     torch::empty({fan_out, fan_in}).uniform_(-bound, bound));
    out.emplace_back(prefix + name + "_bias", torch::empty({fan_out}).uniform_(-bound, bound));
  };
  auto norm = [&](const std::string& name) {
    for (auto& named : layer_norm_parameters(prefix + name + "_", dim))
      out.push_back(std::move(named));
  };
  norm("norm1");
  linear("attention_in", dim, 3 * dim);
  linear("attention_out", dim, dim);
  norm("norm2");
  linear("ff1", dim, ff_dim);
  linear("ff2", ff_dim, dim);
  return out;
}

std::vector<std::pair<std::string, Tensor>> layer_norm_parameters(const std::string& prefix,
                                                                  std::int64_t dim) {
  return {{prefix + "weight", torch::ones({dim})}, {prefix + "bias", torch::zeros({dim})}};
}

Tensor ParamView::vec(std::size_t i, const Tensor& x) const {
  return task_wise(i) ? for_tasks(p_[i], x.dim()) : p_[i];
}

Tensor ParamView::linear(const Tensor& x, std::size_t w) const {
  std::vector<std::int64_t> out_shape = x.sizes().vec();
  out_shape.back() = p_[w].size(-2);
  // Rows flattened into one product with the bias fused in: a broadcasting matmul of x
  // [T, n, L, in] by per-task weights [T, 1, in, out] would copy each task's weight n times.
  if (task_wise(w)) {
    Tensor bias = task_wise(w + 1) ? p_[w + 1].unsqueeze(1) : p_[w + 1];
    return torch::baddbmm(bias, x.reshape({tasks_, -1, x.size(-1)}), p_[w].transpose(-1, -2))
        .view(out_shape);
  }
  if (task_wise(w + 1)) return x.matmul(p_[w].t()) + vec(w + 1, x);
  return torch::addmm(p_[w + 1], x.reshape({-1, x.size(-1)}), p_[w].t()).view(out_shape);
}

Tensor ParamView::norm(const Tensor& x, std::size_t w) const {
  const std::int64_t d = x.size(-1);
  // Torch's fused layer norm is twice differentiable; a per-task gain and bias follow it.
  if (!task_wise(w) && !task_wise(w + 1)) return torch::layer_norm(x, {d}, p_[w], p_[w + 1], 1e-5);
  return torch::layer_norm(x, {d}, {}, {}, 1e-5) * vec(w, x) + vec(w + 1, x);
}

Tensor ParamView::embed(std::size_t i, const Tensor& ids) const {
  if (!task_wise(i)) return torch::embedding(p_[i], ids);
  // One gather over every task's table: row j of task t is row t * V + j of [T * V, d].
  const std::int64_t V = p_[i].size(1), d = p_[i].size(2);
  std::vector<std::int64_t> shape(static_cast<std::size_t>(ids.dim()), 1);
  shape[0] = tasks_;
  Tensor offset = torch::arange(tasks_, ids.options()).mul_(V).view(shape);
  return torch::embedding(p_[i].reshape({tasks_ * V, d}), ids + offset);
}

Tensor attention_bias(const Tensor& masked, std::int64_t heads, torch::ScalarType dtype) {
  std::vector<std::int64_t> shape = masked.sizes().vec();
  const std::size_t r = shape.size();
  shape[r - 3] = heads;
  return masked.to(dtype)
      .mul_(kMaskedScore)
      .expand(shape)
      .reshape({-1, shape[r - 2], shape[r - 1]});
}

Tensor encoder_layer(const Tensor& x, const Tensor& score_bias, const ParamView& p,
                     std::size_t first, const EncoderSpec& spec) {
  const std::int64_t L = x.size(-2), d = x.size(-1), h = spec.heads, dh = d / h;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  // [B..., L, d] -> [B... · h, L, dh]
  const auto fold_heads = [&](const Tensor& t) {
    std::vector<std::int64_t> shape = t.sizes().vec();
    shape.back() = h;
    shape.push_back(dh);
    return t.reshape(shape).transpose(-2, -3).reshape({-1, L, dh});
  };
  const std::vector<Tensor> qkv =
      p.linear(p.norm(x, first + kNorm1), first + kAttentionIn).chunk(3, -1);
  Tensor scores = torch::baddbmm(score_bias, fold_heads(qkv[0]),
                                 fold_heads(qkv[1]).transpose(-1, -2), 1.0, scale);
  Tensor context = torch::bmm(torch::softmax(scores, -1), fold_heads(qkv[2]));
  std::vector<std::int64_t> head_shape = x.sizes().vec();  // [B..., h, L, dh]
  head_shape.back() = dh;
  head_shape.insert(head_shape.end() - 2, h);
  context = context.view(head_shape).transpose(-2, -3).reshape(x.sizes());
  Tensor out = x + p.linear(context, first + kAttentionOut);
  Tensor hidden = p.linear(p.norm(out, first + kNorm2), first + kFf1);
  if (spec.activation == config::Activation::kRelu)
    hidden = torch::relu(hidden);
  else
    hidden = spec.composed_gelu ? exact_gelu(hidden) : torch::gelu(hidden);
  return out + p.linear(hidden, first + kFf2);
}

Tensor later_keys(std::int64_t length, const torch::Device& device) {
  return torch::ones({length, length}, torch::TensorOptions().dtype(torch::kBool).device(device))
      .triu(1);
}

Tensor exact_gelu(const Tensor& x) {
  return 0.5 * x * (1 + torch::erf(x * M_SQRT1_2));
}

}  // namespace ml::models
