// A TorchScript backbone under the tool's head and adapters: see backbone_model.hpp.
#include "models/backbone_model.hpp"

#include <algorithm>
#include <cmath>

#include "models/batched_matmul.hpp"
#include "util/errors.hpp"

namespace ml::models {

namespace {

// x [T, n, k] times w^T, for w shared [out, k] or per task [T, out, k].
torch::Tensor times_transposed(const torch::Tensor& x, const torch::Tensor& w, bool per_task) {
  if (per_task) return batched_matmul(x, w, false, /*transpose_b=*/true);
  return x.matmul(w.t());
}

// A per-feature vector [d] (shared) or [T, d] (per task) to broadcast over [T, n, d].
torch::Tensor over_rows(const torch::Tensor& v, bool per_task) {
  return per_task ? v.unsqueeze(1) : v;
}

// Whether a batch's dense features ([n, d] or, stacked, [T, n, d]) are a frozen backbone's
// cached vectors of width `dim` rather than the empty features of a token batch.
bool holds_vectors(const torch::Tensor& dense, std::int64_t rank, std::int64_t dim) {
  return dense.defined() && dense.dim() == rank && dense.size(rank - 1) == dim;
}

}  // namespace

BackboneShape backbone_shape(const config::Config& config, const TorchScriptBackbone& backbone,
                             std::int64_t outputs) {
  BackboneShape s;
  s.dim = backbone.dim();
  s.hidden.assign(config.model.hidden.begin(), config.model.hidden.end());
  s.outputs = outputs;
  s.adapter = config.model.adapter.kind;
  s.rank = config.model.adapter.rank;
  return s;
}

BackboneModelImpl::BackboneModelImpl(BackboneShape shape,
                                     std::shared_ptr<const TorchScriptBackbone> backbone)
    : shape_(std::move(shape)),
      backbone_(backbone->trainable() ? backbone->deep_copy() : std::move(backbone)) {
  if (backbone_->trainable()) {
    const auto weights = backbone_->parameters();
    const auto& names = backbone_->parameter_names();
    for (std::size_t i = 0; i < weights.size(); ++i) {
      std::string name = "backbone_" + names[i];
      std::replace(name.begin(), name.end(), '.', '_');
      // The module's own tensors: the outer optimiser's updates reach the TorchScript module.
      add(name, weights[i], ParamGroup::kBackbone);
    }
  }
  backbone_params_ = groups_.size();
  if (shape_.adapter == config::AdapterKind::kFilm) {
    film_ = groups_.size();
    add("film_scale", torch::ones({shape_.dim}), ParamGroup::kAdapter);
    add("film_shift", torch::zeros({shape_.dim}), ParamGroup::kAdapter);
  }
  std::int64_t in = shape_.dim;
  // nn.Linear's default initialisation (uniform in +-1/sqrt(fan_in)), as the MLP's.
  auto linear = [&](const std::string& name, std::int64_t fan_in, std::int64_t fan_out,
                    ParamGroup group) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    add(name + "_weight", torch::empty({fan_out, fan_in}).uniform_(-bound, bound), group);
    add(name + "_bias", torch::empty({fan_out}).uniform_(-bound, bound), group);
  };
  for (std::size_t l = 0; l < shape_.hidden.size(); ++l) {
    const std::string name = "tower_" + std::to_string(l);
    layers_.push_back(groups_.size());
    linear(name, in, shape_.hidden[l], ParamGroup::kTower);
    if (shape_.adapter == config::AdapterKind::kLora) {
      // A as LoRA's reference implementation (Kaiming-uniform, here nn.Linear's bound), B zero.
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      add(name + "_lora_a", torch::empty({shape_.rank, in}).uniform_(-bound, bound),
          ParamGroup::kAdapter);
      add(name + "_lora_b", torch::zeros({shape_.hidden[l], shape_.rank}), ParamGroup::kAdapter);
    }
    in = shape_.hidden[l];
  }
  linear("head", in, shape_.outputs, ParamGroup::kHead);
}

void BackboneModelImpl::add(const std::string& name, torch::Tensor value, ParamGroup group) {
  register_parameter(name, value, /*requires_grad=*/true);
  names_.push_back(name);
  groups_.push_back(group);
  ranks_.push_back(value.dim());
}

double BackboneModelImpl::largest_product(std::int64_t rows) const {
  double largest = 0;
  std::int64_t in = shape_.dim;
  std::vector<std::int64_t> outs = shape_.hidden;
  outs.push_back(shape_.outputs);
  for (std::int64_t out : outs) {
    largest = std::max(
        largest, static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out));
    in = out;
  }
  return largest;
}

std::vector<torch::Tensor> BackboneModelImpl::backbone_weights(
    const std::vector<torch::Tensor>& p) const {
  return {p.begin(), p.begin() + static_cast<std::ptrdiff_t>(backbone_params_)};
}

torch::Tensor BackboneModelImpl::features(const Batch& batch,
                                          const std::vector<torch::Tensor>& p) const {
  if (holds_vectors(batch.dense, 2, shape_.dim)) return batch.dense;
  if (!batch.has_tokens())
    throw DataError("a backbone model's batch holds neither vectors nor tokens");
  if (!backbone_->trainable()) return backbone_->encode(batch.tokens, batch.mask);
  const auto weights = backbone_weights(p);
  return backbone_->encode(batch.tokens, batch.mask, &weights);
}

torch::Tensor BackboneModelImpl::features_stacked(const StackedBatch& batch,
                                                  const std::vector<torch::Tensor>& p) const {
  if (holds_vectors(batch.dense, 3, shape_.dim)) return batch.dense;
  if (!batch.tokens.defined())
    throw DataError("a backbone model's batch holds neither vectors nor tokens");
  const auto T = batch.tokens.size(0), n = batch.tokens.size(1), L = batch.tokens.size(2);
  torch::Tensor ids = batch.tokens.reshape({T * n, L});
  torch::Tensor mask = batch.mask.reshape({T * n, L});
  // A stack's padding rows have no real token, and attention over nothing but masked keys is
  // NaN in most encoders; a NaN times a padding row's zero weight is still NaN. They see one
  // token and their vectors are zeroed.
  torch::Tensor empty = mask.any(1).logical_not();
  const bool any_empty = empty.any().item<bool>();
  if (any_empty) {
    mask = mask.clone();
    mask.select(1, 0).logical_or_(empty);
  }
  torch::Tensor x;
  if (!backbone_->trainable()) {
    x = backbone_->encode(ids, mask);
  } else {
    const auto weights = backbone_weights(p);
    x = backbone_->encode(ids, mask, &weights);
  }
  if (any_empty) x = x.masked_fill(empty.unsqueeze(1), 0.0);
  return x.view({T, n, x.size(1)});
}

torch::Tensor BackboneModelImpl::tower(torch::Tensor x, const std::vector<torch::Tensor>& p) const {
  if (shape_.adapter == config::AdapterKind::kFilm) {
    const auto &scale = p[film_], &shift = p[film_ + 1];
    x = x * over_rows(scale, per_task(film_, scale)) + over_rows(shift, per_task(film_ + 1, shift));
  }
  const bool lora = shape_.adapter == config::AdapterKind::kLora;
  for (std::size_t w : layers_) {
    const torch::Tensor &weight = p[w], &bias = p[w + 1];
    torch::Tensor y =
        times_transposed(x, weight, per_task(w, weight)) + over_rows(bias, per_task(w + 1, bias));
    if (lora) {
      const torch::Tensor &a = p[w + 2], &b = p[w + 3];
      y = y + times_transposed(times_transposed(x, a, per_task(w + 2, a)), b, per_task(w + 3, b));
    }
    x = torch::relu(y);
  }
  return x;
}

torch::Tensor BackboneModelImpl::head(const torch::Tensor& x,
                                      const std::vector<torch::Tensor>& p) const {
  const std::size_t w = p.size() - 2;
  return times_transposed(x, p[w], per_task(w, p[w])) +
         over_rows(p[w + 1], per_task(w + 1, p[w + 1]));
}

torch::Tensor BackboneModelImpl::represent(const Batch& batch,
                                           const std::vector<torch::Tensor>& p) const {
  return tower(features(batch, p).unsqueeze(0), p).squeeze(0);
}

torch::Tensor BackboneModelImpl::forward(const Batch& batch,
                                         const std::vector<torch::Tensor>& p) const {
  return head(tower(features(batch, p).unsqueeze(0), p), p).squeeze(0);
}

torch::Tensor BackboneModelImpl::represent_stacked(const StackedBatch& batch,
                                                   const std::vector<torch::Tensor>& p) const {
  return tower(features_stacked(batch, p), p);
}

torch::Tensor BackboneModelImpl::forward_stacked(const StackedBatch& batch,
                                                 const std::vector<torch::Tensor>& p) const {
  return head(tower(features_stacked(batch, p), p), p);
}

StackedPrefix BackboneModelImpl::stacked_prefix(const StackedBatch& batch,
                                                const std::vector<torch::Tensor>& p,
                                                std::size_t first_adapted) const {
  if (holds_vectors(batch.dense, 3, shape_.dim) || first_adapted < backbone_params_) return {};
  return {features_stacked(batch, p), 0};
}

torch::Tensor BackboneModelImpl::forward_stacked_from(const StackedPrefix& prefix,
                                                      const StackedBatch& batch,
                                                      const std::vector<torch::Tensor>& p) const {
  if (!prefix.defined()) return forward_stacked(batch, p);
  return head(tower(prefix.hidden, p), p);
}

}  // namespace ml::models
