// Models with a functional forward: see model.hpp.
#include "models/model.hpp"

#include <cmath>

#include "util/errors.hpp"

namespace ml::models {

ModelShape model_shape(const config::Config& config, std::int64_t dense_dim,
                       const std::vector<std::int64_t>& id_cardinalities) {
  ModelShape s;
  s.type = config.model.type;
  s.hidden.assign(config.model.hidden.begin(), config.model.hidden.end());
  s.embedding_dim = config.model.embedding_dim;
  s.dense_dim = dense_dim;
  if (s.type == "embedding_mlp") s.id_cardinalities = id_cardinalities;
  s.outputs =
      tasks::label_kind(config) == tasks::LabelKind::kMulticlass ? config.task.label.ways : 1;
  return s;
}

FunctionalModelImpl::FunctionalModelImpl(ModelShape shape) : shape_(std::move(shape)) {
  for (std::size_t k = 0; k < shape_.id_cardinalities.size(); ++k)
    add("embedding_" + std::to_string(k),
        torch::randn({shape_.id_cardinalities[k], shape_.embedding_dim}) * 0.01,
        ParamGroup::kEmbedding);
  first_tower_ = groups_.size();
  std::int64_t in = shape_.dense_dim + static_cast<std::int64_t>(shape_.id_cardinalities.size()) *
                                           shape_.embedding_dim;
  if (in <= 0) throw DataError("the model has no input features (0 dense features, no id fields)");
  // nn.Linear's default initialisation (uniform in +-1/sqrt(fan_in)), as the Python reference.
  auto linear = [&](const std::string& name, std::int64_t fan_in, std::int64_t fan_out,
                    ParamGroup group) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    add(name + "_weight", torch::empty({fan_out, fan_in}).uniform_(-bound, bound), group);
    add(name + "_bias", torch::empty({fan_out}).uniform_(-bound, bound), group);
  };
  for (std::size_t l = 0; l < shape_.hidden.size(); ++l) {
    linear("tower_" + std::to_string(l), in, shape_.hidden[l], ParamGroup::kTower);
    in = shape_.hidden[l];
  }
  linear("head", in, shape_.outputs, ParamGroup::kHead);
}

void FunctionalModelImpl::add(const std::string& name, torch::Tensor value, ParamGroup group) {
  register_parameter(name, std::move(value));
  names_.push_back(name);
  groups_.push_back(group);
}

torch::Tensor FunctionalModelImpl::represent(const Batch& batch,
                                             const std::vector<torch::Tensor>& p) const {
  torch::Tensor x = batch.dense;
  if (first_tower_ > 0) {
    std::vector<torch::Tensor> parts = {x};
    for (std::size_t k = 0; k < first_tower_; ++k)
      parts.push_back(torch::embedding(p[k], batch.ids.select(1, static_cast<std::int64_t>(k))));
    x = torch::cat(parts, 1);
  }
  for (std::size_t l = 0; l < shape_.hidden.size(); ++l) {
    const auto& w = p[first_tower_ + 2 * l];
    const auto& b = p[first_tower_ + 2 * l + 1];
    x = torch::relu(torch::addmm(b, x, w.t()));
  }
  return x;
}

torch::Tensor FunctionalModelImpl::forward(const Batch& batch,
                                           const std::vector<torch::Tensor>& p) const {
  const auto head = p.size() - 2;
  return torch::addmm(p[head + 1], represent(batch, p), p[head].t());
}

std::vector<bool> adapt_mask(const FunctionalModelImpl& model, const std::string& which) {
  std::vector<bool> mask;
  for (ParamGroup g : model.groups())
    mask.push_back(which == "all" || (which == "head" && g == ParamGroup::kHead) ||
                   (which == "dense" && g != ParamGroup::kEmbedding));
  return mask;
}

torch::Tensor task_loss(const torch::Tensor& outputs, const torch::Tensor& target,
                        tasks::LabelKind kind) {
  switch (kind) {
    case tasks::LabelKind::kBinary:
      return torch::binary_cross_entropy_with_logits(outputs.squeeze(-1), target);
    case tasks::LabelKind::kRegression:
      return torch::mse_loss(outputs.squeeze(-1), target);
    case tasks::LabelKind::kMulticlass:
      return torch::nn::functional::cross_entropy(outputs, target);
  }
  return {};
}

}  // namespace ml::models
