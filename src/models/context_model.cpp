// The embedding_mlp with item-text and user-sequence encoders: see context_model.hpp.
#include "models/context_model.hpp"

#include <algorithm>
#include <cstdio>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::models {

using torch::Tensor;

namespace {

// Parameters of one encoder of width d: its layers, final norm and the embeddings listed.
double encoder_count(double d, double ff, double layers, double embedding_rows) {
  const double layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (ff * d + ff) + (d * ff + d);
  return layers * layer + 2 * d + embedding_rows * d;
}

void check_width(std::int64_t dim, std::int64_t heads, const char* what) {
  if (dim < 1 || heads < 1 || dim % heads != 0)
    throw ConfigError(std::string(what) + ": width " + std::to_string(dim) +
                      " is not a positive multiple of its " + std::to_string(heads) +
                      " attention heads");
}

}  // namespace

ContextShape context_shape(const config::Config& config, const ModelShape& mlp,
                           std::int64_t text_vocab) {
  ContextShape s;
  s.mlp = mlp;
  const auto& t = config.model.item_text;
  if (t.enabled()) {
    s.text_vocab = text_vocab;
    s.text_dim = t.dim;
    s.text_layers = t.layers;
    s.text_heads = t.heads;
    s.text_ff = t.ff_dim;
    s.text_max_len = t.max_len;
  }
  const auto& q = config.model.user_sequence;
  if (q.enabled()) {
    s.sequence_length = q.length;
    s.sequence_layers = q.layers;
    s.sequence_heads = q.heads;
    s.sequence_ff = q.ff_dim;
  }
  return s;
}

ContextModelImpl::ContextModelImpl(ContextShape shape) : shape_(std::move(shape)) {
  const ContextShape& s = shape_;
  const std::int64_t e = s.mlp.embedding_dim;
  if (s.text_vocab > 0) check_width(s.text_dim, s.text_heads, "model.item_text");
  if (s.sequence_length > 0) {
    if (s.mlp.id_cardinalities.size() <= static_cast<std::size_t>(kItemIdField))
      throw ConfigError("model.user_sequence: the model has no item-id embedding table to read");
    check_width(e, s.sequence_heads, "model.user_sequence (model.embedding_dim)");
  }
  double extra = 0;
  if (s.text_vocab > 0)
    extra += encoder_count(static_cast<double>(s.text_dim), static_cast<double>(s.text_ff),
                           static_cast<double>(s.text_layers),
                           static_cast<double>(s.text_vocab + s.text_max_len));
  if (s.sequence_length > 0)
    extra += encoder_count(static_cast<double>(e), static_cast<double>(s.sequence_ff),
                           static_cast<double>(s.sequence_layers),
                           static_cast<double>(s.sequence_length + 2));
  if (extra > static_cast<double>(config::kMaxModelParameters)) {
    char count[32];
    std::snprintf(count, sizeof count, "%.3g", extra);
    throw ConfigError("the item-text and user-sequence encoders would hold " + std::string(count) +
                      " parameters; at most " + with_thousands(config::kMaxModelParameters) +
                      " fit: lower model.item_text / model.user_sequence sizes");
  }
  // The embedding_mlp first, so that its weights are drawn as a run without encoders draws
  // them; its tower reads the encoders' outputs after the features.
  ModelShape mlp = s.mlp;
  if (s.text_vocab > 0) mlp.dense_dim += s.text_dim;
  if (s.sequence_length > 0) mlp.dense_dim += e;
  mlp_ = std::make_shared<FunctionalModelImpl>(mlp);
  const auto& mlp_names = mlp_->names();
  const std::vector<Tensor> mlp_params = mlp_->params();
  mlp_index_.resize(mlp_params.size());
  auto take_mlp = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      mlp_index_[i] = names_.size();
      add(mlp_names[i], mlp_params[i], mlp_->groups()[i]);
    }
  };
  take_mlp(0, mlp_->id_tables());
  auto encoder = [&](const std::string& prefix, std::int64_t d, std::int64_t ff,
                     std::int64_t layers) {
    for (std::int64_t l = 0; l < layers; ++l)
      for (auto& [name, value] :
           encoder_layer_parameters(prefix + "layer_" + std::to_string(l) + "_", d, ff))
        add(name, value, ParamGroup::kEmbedding);
    for (auto& [name, value] : layer_norm_parameters(prefix + "final_norm_", d))
      add(name, value, ParamGroup::kEmbedding);
  };
  // Small normal embeddings, as the text transformer's.
  text_first_ = names_.size();
  if (s.text_vocab > 0) {
    add("item_text_token_embedding", torch::randn({s.text_vocab, s.text_dim}) * 0.02,
        ParamGroup::kEmbedding);
    add("item_text_position_embedding", torch::randn({s.text_max_len, s.text_dim}) * 0.02,
        ParamGroup::kEmbedding);
    encoder("item_text_", s.text_dim, s.text_ff, s.text_layers);
  }
  sequence_first_ = names_.size();
  if (s.sequence_length > 0) {
    add("user_sequence_position_embedding", torch::randn({s.sequence_length + 1, e}) * 0.02,
        ParamGroup::kEmbedding);
    add("user_sequence_readout", torch::randn({e}) * 0.02, ParamGroup::kEmbedding);
    encoder("user_sequence_", e, s.sequence_ff, s.sequence_layers);
  }
  take_mlp(mlp_->id_tables(), mlp_params.size());
}

void ContextModelImpl::add(const std::string& name, Tensor value, ParamGroup group) {
  register_parameter(name, value);
  names_.push_back(name);
  groups_.push_back(group);
  ranks_.push_back(value.dim());
}

double ContextModelImpl::largest_product(std::int64_t rows) const {
  const auto n = static_cast<double>(rows);
  double largest = mlp_->largest_product(rows);
  if (shape_.text_vocab > 0) {
    const auto d = static_cast<double>(shape_.text_dim);
    largest = std::max(largest, n * static_cast<double>(shape_.text_max_len) * d *
                                    std::max(3 * d, static_cast<double>(shape_.text_ff)));
  }
  if (shape_.sequence_length > 0) {
    const auto d = static_cast<double>(shape_.mlp.embedding_dim);
    largest = std::max(largest, n * static_cast<double>(shape_.sequence_length + 1) * d *
                                    std::max(3 * d, static_cast<double>(shape_.sequence_ff)));
  }
  return largest;
}

Tensor ContextModelImpl::item_text_stacked(const StackedBatch& batch,
                                           const std::vector<Tensor>& p) const {
  if (shape_.text_vocab == 0) return {};
  if (!batch.item_tokens.defined())
    throw DataError("model.item_text: this batch holds no item texts (features without it)");
  const std::size_t first = text_first_;
  const ParamView view(p, ranks_, batch.tasks());
  const std::int64_t Lt = batch.item_tokens.size(-1);
  if (Lt > shape_.text_max_len)
    throw DataError("item texts of " + std::to_string(Lt) +
                    " tokens exceed model.item_text.max_len " +
                    std::to_string(shape_.text_max_len));
  Tensor x = view.embed(first, batch.item_tokens);  // [T, u, Lt, t]
  x = x + (view.task_wise(first + 1) ? view.vec(first + 1, x).narrow(-2, 0, Lt)
                                     : p[first + 1].narrow(0, 0, Lt));
  const Tensor score_bias =
      attention_bias(batch.item_token_mask.logical_not().unsqueeze(-2).unsqueeze(-2),
                     shape_.text_heads, x.scalar_type());
  const EncoderSpec spec{shape_.text_heads, config::Activation::kGelu};
  std::size_t at = first + 2;
  for (std::int64_t l = 0; l < shape_.text_layers; ++l, at += kEncoderLayerTensors)
    x = encoder_layer(x, score_bias, view, at, spec);
  x = view.norm(x, at);
  const Tensor weight = batch.item_token_mask.to(x.scalar_type()).unsqueeze(-1);
  const Tensor pooled = (x * weight).sum(-2) / weight.sum(-2).clamp_min(1.0);  // [T, u, t]
  const Tensor slot = batch.item_slot.unsqueeze(-1).expand({-1, -1, pooled.size(-1)});
  return pooled.gather(1, slot);  // [T, n, t]
}

Tensor ContextModelImpl::user_sequence_stacked(const StackedBatch& batch,
                                               const std::vector<Tensor>& p) const {
  if (shape_.sequence_length == 0) return {};
  if (!batch.history.defined())
    throw DataError("model.user_sequence: this batch holds no user sequences");
  const std::int64_t L = batch.history.size(-1), T = batch.tasks(), n = batch.rows();
  if (L != shape_.sequence_length)
    throw DataError("user sequences of " + std::to_string(L) + " items; the model reads " +
                    std::to_string(shape_.sequence_length) + " (model.user_sequence.length)");
  const std::size_t first = sequence_first_, table = static_cast<std::size_t>(kItemIdField);
  const ParamView view(p, ranks_, T);
  Tensor items;
  if (view.task_wise(table)) {
    if (!batch.history_local.defined())
      throw std::logic_error("per-task item rows need gather_embedding_rows() first");
    items = view.embed(table, batch.history_local);
  } else {
    items = torch::embedding(p[table], batch.history);
  }  // [T, n, L, e]
  const std::int64_t e = items.size(-1);
  const Tensor readout = view.vec(first + 1, items).expand({T, n, 1, e});
  Tensor x = torch::cat({items, readout}, -2);
  x = x + view.vec(first, x);  // positions [L + 1, e]
  // Keys: the real items and the read-out token; each position sees itself and earlier ones.
  const Tensor real =
      torch::cat({batch.history_mask, torch::ones({T, n, 1}, batch.history_mask.options())}, -1);
  const Tensor score_bias = attention_bias(
      real.logical_not().unsqueeze(-2).unsqueeze(-2).logical_or(later_keys(L + 1, x.device())),
      shape_.sequence_heads, x.scalar_type());
  const EncoderSpec spec{shape_.sequence_heads, config::Activation::kGelu};
  std::size_t at = first + 2;
  for (std::int64_t l = 0; l < shape_.sequence_layers; ++l, at += kEncoderLayerTensors)
    x = encoder_layer(x, score_bias, view, at, spec);
  return view.norm(x.select(-2, L), at);  // the read-out token: [T, n, e]
}

std::vector<Tensor> ContextModelImpl::mlp_params(const std::vector<Tensor>& p) const {
  if (p.size() != names_.size())
    throw std::logic_error("the model got " + std::to_string(p.size()) +
                           " parameters for a layout of " + std::to_string(names_.size()));
  std::vector<Tensor> out;
  out.reserve(mlp_index_.size());
  for (std::size_t i : mlp_index_) out.push_back(p[i]);
  return out;
}

StackedBatch ContextModelImpl::tower_batch(const StackedBatch& batch,
                                           const std::vector<Tensor>& p) const {
  std::vector<Tensor> parts = {batch.dense};
  for (const Tensor& t : {item_text_stacked(batch, p), user_sequence_stacked(batch, p)})
    if (t.defined()) parts.push_back(t.to(batch.dense.scalar_type()));
  StackedBatch widened = batch;
  widened.dense = torch::cat(parts, -1);
  return widened;
}

Tensor ContextModelImpl::forward_stacked(const StackedBatch& batch,
                                         const std::vector<Tensor>& p) const {
  return mlp_->forward_stacked(tower_batch(batch, p), mlp_params(p));
}

StackedPrefix ContextModelImpl::stacked_prefix(const StackedBatch& batch,
                                               const std::vector<Tensor>& p,
                                               std::size_t first_adapted) const {
  // Id tables and encoders (kEmbedding) come first in the layout, then the tower that reads
  // them: when the first adapted parameter is past them, none of them adapts.
  if (first_adapted < groups_.size() && groups_[first_adapted] == ParamGroup::kEmbedding) return {};
  return {tower_batch(batch, p).dense, 1};
}

Tensor ContextModelImpl::forward_stacked_from(const StackedPrefix& prefix,
                                              const StackedBatch& batch,
                                              const std::vector<Tensor>& p) const {
  if (!prefix.defined()) return forward_stacked(batch, p);
  StackedBatch widened = batch;
  widened.dense = prefix.hidden;
  return mlp_->forward_stacked(widened, mlp_params(p));
}

Tensor ContextModelImpl::represent_stacked(const StackedBatch& batch,
                                           const std::vector<Tensor>& p) const {
  return mlp_->represent_stacked(tower_batch(batch, p), mlp_params(p));
}

Tensor ContextModelImpl::forward(const Batch& batch, const std::vector<Tensor>& p) const {
  return forward_stacked(stack_tasks({batch}), p)[0];
}

Tensor ContextModelImpl::represent(const Batch& batch, const std::vector<Tensor>& p) const {
  return represent_stacked(stack_tasks({batch}), p)[0];
}

}  // namespace ml::models
