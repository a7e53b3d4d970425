// Models with a functional forward: see model.hpp.
#include "models/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "models/batched_matmul.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::models {

namespace {

// The parameters of `s`, in double: the sizes come from a config and their product may not fit
// an integer.
double parameter_count(const ModelShape& s) {
  double n = 0;
  for (std::int64_t rows : s.id_cardinalities)
    n += static_cast<double>(rows) * static_cast<double>(s.embedding_dim);
  double in = static_cast<double>(s.dense_dim) +
              static_cast<double>(s.id_cardinalities.size()) * static_cast<double>(s.embedding_dim);
  for (std::int64_t width : s.hidden) {
    n += (in + 1) * static_cast<double>(width);
    in = static_cast<double>(width);
  }
  return n + (in + 1) * static_cast<double>(s.outputs);
}

// A ConfigError naming the sizes when `s` exceeds config::kMaxModelParameters, before anything is
// allocated (torch would fail with an allocator's message, or take the machine's memory).
void check_model_size(const ModelShape& s) {
  const double n = parameter_count(s);
  if (n <= static_cast<double>(config::kMaxModelParameters)) return;
  std::vector<std::string> widths;
  for (std::int64_t w : s.hidden) widths.push_back(std::to_string(w));
  std::string what = "model.hidden = [" + join(widths, ",") + "] over " +
                     with_thousands(s.dense_dim) + " dense input features";
  if (!s.id_cardinalities.empty()) {
    std::int64_t rows = 0;
    for (std::int64_t r : s.id_cardinalities) rows = std::max(rows, r);
    what += " and " + std::to_string(s.id_cardinalities.size()) + " embedding tables of up to " +
            with_thousands(rows) +
            " rows (features.hash_buckets or the vocabulary) x model.embedding_dim = " +
            std::to_string(s.embedding_dim);
  }
  char count[32];
  std::snprintf(count, sizeof count, "%.3g", n);
  throw ConfigError("the model would hold " + std::string(count) + " parameters (" + what +
                    "); at most " + with_thousands(config::kMaxModelParameters) +
                    " (4 GiB of 32-bit weights) fit: lower those sizes");
}

}  // namespace

ModelShape model_shape(const config::Config& config, std::int64_t dense_dim,
                       const std::vector<std::int64_t>& id_cardinalities) {
  ModelShape s;
  s.type = config.model.type;
  s.hidden.assign(config.model.hidden.begin(), config.model.hidden.end());
  s.embedding_dim = config.model.embedding_dim;
  s.dense_dim = dense_dim;
  if (s.type == config::ModelType::kEmbeddingMlp) s.id_cardinalities = id_cardinalities;
  s.outputs =
      tasks::label_kind(config) == tasks::LabelKind::kMulticlass ? config.task.label.ways : 1;
  check_model_size(s);
  return s;
}

double largest_product(const ModelShape& shape, std::int64_t rows) {
  std::int64_t in = shape.dense_dim +
                    static_cast<std::int64_t>(shape.id_cardinalities.size()) * shape.embedding_dim;
  double largest = 0;
  std::vector<std::int64_t> outs = shape.hidden;
  outs.push_back(shape.outputs);
  for (std::int64_t out : outs) {
    largest = std::max(
        largest, static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out));
    in = out;
  }
  return largest;
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
  register_parameter(name, value);
  names_.push_back(name);
  groups_.push_back(group);
  ranks_.push_back(value.dim());
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

double FunctionalModelImpl::largest_product(std::int64_t rows) const {
  return models::largest_product(shape_, rows);
}

torch::Tensor FunctionalModelImpl::forward(const Batch& batch,
                                           const std::vector<torch::Tensor>& p) const {
  const auto head = p.size() - 2;
  return torch::addmm(p[head + 1], represent(batch, p), p[head].t());
}

torch::Tensor FunctionalModelImpl::linear_stacked(const torch::Tensor& x,
                                                  const std::vector<torch::Tensor>& p,
                                                  std::size_t weight_index) const {
  const torch::Tensor &w = p[weight_index], &b = p[weight_index + 1];
  const bool b_per_task = per_task(weight_index + 1, b);
  if (per_task(weight_index, w)) {
    if (b_per_task) return batched_linear(x, w, b);
    return batched_matmul(x, w, false, /*transpose_b=*/true) + b;
  }
  const auto T = x.size(0), n = x.size(1);
  torch::Tensor flat = x.reshape({T * n, x.size(2)});
  if (b_per_task) return flat.mm(w.t()).view({T, n, -1}) + b.unsqueeze(1);
  return torch::addmm(b, flat, w.t()).view({T, n, -1});
}

torch::Tensor FunctionalModelImpl::represent_stacked(const StackedBatch& batch,
                                                     const std::vector<torch::Tensor>& p) const {
  return represent_stacked(
      batch, p, [&](std::size_t w, const torch::Tensor& x) { return linear_stacked(x, p, w); });
}

torch::Tensor FunctionalModelImpl::forward_stacked(const StackedBatch& batch,
                                                   const std::vector<torch::Tensor>& p) const {
  return forward_stacked(
      batch, p, [&](std::size_t w, const torch::Tensor& x) { return linear_stacked(x, p, w); });
}

torch::Tensor FunctionalModelImpl::tower_input_stacked(const StackedBatch& batch,
                                                       const std::vector<torch::Tensor>& p) const {
  torch::Tensor x = batch.dense;
  if (first_tower_ > 0) {
    std::vector<torch::Tensor> parts = {x};
    for (std::size_t k = 0; k < first_tower_; ++k) {
      const auto field = static_cast<std::int64_t>(k);
      if (!per_task(k, p[k])) {
        parts.push_back(torch::embedding(p[k], batch.ids.select(2, field)));
        continue;
      }
      if (!batch.local_ids.defined())
        throw std::logic_error("per-task embedding rows need gather_embedding_rows() first");
      // One gather over every task's rows: slot j of task t is row t * u + j of the flattened
      // [T * u, dim] table.
      const auto T = p[k].size(0), u = p[k].size(1);
      torch::Tensor offset = torch::arange(T, batch.local_ids.options()).mul_(u).view({T, 1});
      parts.push_back(torch::embedding(p[k].reshape({T * u, p[k].size(2)}),
                                       batch.local_ids.select(2, field) + offset));
    }
    x = torch::cat(parts, 2);
  }
  return x;
}

torch::Tensor FunctionalModelImpl::represent_stacked(const StackedBatch& batch,
                                                     const std::vector<torch::Tensor>& p,
                                                     const StackedLinear& linear) const {
  torch::Tensor x = tower_input_stacked(batch, p);
  for (std::size_t l = 0; l < shape_.hidden.size(); ++l) {
    x = torch::relu(linear(first_tower_ + 2 * l, x));
  }
  return x;
}

torch::Tensor FunctionalModelImpl::forward_stacked(const StackedBatch& batch,
                                                   const std::vector<torch::Tensor>& p,
                                                   const StackedLinear& linear) const {
  return linear(p.size() - 2, represent_stacked(batch, p, linear));
}

torch::Tensor task_losses(const torch::Tensor& outputs, const StackedBatch& batch,
                          tasks::LabelKind kind) {
  torch::Tensor per_row;
  switch (kind) {
    case tasks::LabelKind::kBinary:
      per_row = torch::binary_cross_entropy_with_logits(outputs.squeeze(-1), batch.target, {}, {},
                                                        at::Reduction::None);
      break;
    case tasks::LabelKind::kRegression:
      per_row = (outputs.squeeze(-1) - batch.target).pow(2);
      break;
    case tasks::LabelKind::kMulticlass: {
      const auto T = outputs.size(0), n = outputs.size(1);
      per_row = torch::nn::functional::cross_entropy(
                    outputs.reshape({T * n, outputs.size(2)}), batch.target.reshape({T * n}),
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                    .view({T, n});
      break;
    }
  }
  if (!batch.padded) return per_row.mean(1);
  return (per_row * batch.weight).sum(1) / batch.count;
}

std::vector<bool> adapt_mask(const Network& model, config::InnerParams which) {
  std::vector<bool> mask;
  for (ParamGroup g : model.groups()) {
    // A backbone's weights run inside a TorchScript module that takes one set of weights, so
    // no inner loop can give each task its own (models/backbone_model.hpp).
    if (g == ParamGroup::kBackbone) {
      mask.push_back(false);
      continue;
    }
    switch (which) {
      case config::InnerParams::kAll:
        mask.push_back(true);
        break;
      case config::InnerParams::kHead:
        mask.push_back(g == ParamGroup::kHead);
        break;
      case config::InnerParams::kDense:
        mask.push_back(g != ParamGroup::kEmbedding);
        break;
      case config::InnerParams::kAdapters:
        mask.push_back(g == ParamGroup::kHead || g == ParamGroup::kAdapter);
        break;
    }
  }
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
