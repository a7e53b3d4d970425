// Meta-learning algorithms and baselines: see meta_learner.hpp.
#include "meta/meta_learner.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "meta/implicit_inner_loop.hpp"
#include "meta/stacked_inner_loop.hpp"
#include "models/task_stack.hpp"
#include "models/transformer.hpp"
#include "runtime/worker_pool.hpp"
#include "util/errors.hpp"

namespace ml::meta {

using models::Batch;
using torch::Tensor;

TaskBatch make_task_batch(const features::FeatureSpace& features,
                          const features::FeatureEncoder& encoder, const tasks::Episode& episode,
                          const torch::Device& device) {
  const auto dense = features.dense_dim();
  const auto ids = features.id_fields();
  TaskBatch b{
      models::make_batch(encoder, dense, ids, *episode.task, episode.support, episode.classes),
      models::make_batch(encoder, dense, ids, *episode.task, episode.query, episode.classes)};
  if (device.is_cuda()) {
    b.support = b.support.to(device);
    b.query = b.query.to(device);
  }
  return b;
}

namespace {
// A regression target at or beyond this magnitude is named as a diverged run's likely cause.
constexpr float kLargeRegressionTarget = 1e6f;
}  // namespace

std::string non_finite_input(const features::FeatureSpace& features,
                             const std::vector<TaskBatch>& tasks) {
  for (const TaskBatch& t : tasks)
    for (const Batch* b : {&t.support, &t.query}) {
      const Tensor dense = b->dense.to(torch::kCPU, torch::kFloat).contiguous();
      std::string found =
          features.non_finite_feature(dense.data_ptr<float>(), static_cast<std::size_t>(b->size()));
      if (!found.empty()) return found;
      if (!b->target.is_floating_point()) continue;
      const Tensor target = b->target.to(torch::kCPU, torch::kFloat);
      const Tensor bad = torch::logical_not(torch::isfinite(target));
      if (const auto n = bad.sum().item<std::int64_t>(); n > 0)
        return "the label target is not finite in " + std::to_string(n) + " of " +
               std::to_string(b->size()) + " rows (e.g. price x quantity beyond float's range)";
      // Finite, but the squared loss squares and sums it in floats: a spend of 1e10 x 1e10 has
      // no float square, and 15 targets of 1e19 have none for the sum of their squares.
      const Tensor squares = target * target;
      if (!torch::isfinite(squares.sum()).item<bool>())
        return "the label target is too large for the squared loss: its squares overflow a float "
               "over " +
               std::to_string(b->size()) + " rows (largest magnitude " +
               fmt::format("{}", target.abs().max().item<float>()) +
               "); rescale the target column (e.g. price x quantity in thousands)";
      // Squares that fit can still diverge: the inner SGD steps move the weights by lr x 2 (o - y)
      // x, and at a million or more that runs past float within a few steps whatever the
      // learning rates (a 1e15 target diverged at lr 1e-6 with gradient clipping).
      const float largest = target.abs().max().item<float>();
      if (largest >= kLargeRegressionTarget)
        return "the label target reaches " + fmt::format("{:g}", largest) +
               " in magnitude: at that scale the squared loss's gradients overflow float within a "
               "few steps; rescale the target column (e.g. in thousands, or its logarithm)";
    }
  return "";
}

std::vector<Tensor> inner_loop(const models::Network& model, const std::vector<Tensor>& params,
                               const std::vector<bool>& mask, const Batch& support,
                               tasks::LabelKind kind, int steps, double lr, bool create_graph,
                               const std::vector<Tensor>* per_param_lr) {
  std::vector<Tensor> fast = params;
  if (!create_graph)
    for (std::size_t i = 0; i < fast.size(); ++i)
      if (mask[i]) fast[i] = params[i].detach().requires_grad_(true);
  for (int s = 0; s < steps; ++s) {
    Tensor loss = models::task_loss(model.forward(support, fast), support.target, kind);
    std::vector<Tensor> inputs;
    for (std::size_t i = 0; i < fast.size(); ++i)
      if (mask[i]) inputs.push_back(fast[i]);
    auto grads = torch::autograd::grad({loss}, inputs, /*grad_outputs=*/{},
                                       /*retain_graph=*/create_graph, /*create_graph=*/create_graph,
                                       /*allow_unused=*/true);
    std::size_t k = 0;
    for (std::size_t i = 0; i < fast.size(); ++i) {
      if (!mask[i]) continue;
      const Tensor& g = grads[k++];
      if (!g.defined()) continue;
      Tensor step = per_param_lr ? (*per_param_lr)[i] * g : lr * g;
      fast[i] = create_graph ? fast[i] - step : (fast[i] - step).detach().requires_grad_(true);
    }
  }
  return fast;
}

MetaLearner::MetaLearner(const config::MetaConfig& config, tasks::LabelKind kind,
                         models::FunctionalModel model)
    : MetaLearner(config, kind, std::shared_ptr<models::Network>(model.ptr())) {}

MetaLearner::MetaLearner(const config::MetaConfig& config, tasks::LabelKind kind,
                         std::shared_ptr<models::Network> model)
    : config_(config), kind_(kind), model_(std::move(model)) {
  mask_ = mask_for(config_.algorithm);
  if (config_.algorithm == config::Algorithm::kMetaSgd)
    for (const auto& p : model_->params())
      inner_lrs_.push_back(torch::full_like(p, config_.inner_lr).requires_grad_(true));
}

void MetaLearner::use_first_order() {
  if (config_.algorithm != config::Algorithm::kMaml)
    throw std::logic_error("use_first_order: only MAML has a first-order form here");
  config_.algorithm = config::Algorithm::kFomaml;  // the same mask_ (mask_for)
}

std::vector<bool> MetaLearner::mask_for(config::Algorithm algorithm) const {
  // ANIL adapts the head by definition; Reptile moves every weight, or weights it leaves out
  // would never be trained.
  if (algorithm == config::Algorithm::kAnil)
    return models::adapt_mask(*model_, config::InnerParams::kHead);
  if (algorithm == config::Algorithm::kReptile)
    return models::adapt_mask(*model_, config::InnerParams::kAll);
  if (!config_.inner_layers.empty()) {
    const auto* transformer = dynamic_cast<const models::TransformerImpl*>(model_.get());
    if (!transformer) throw ConfigError("meta.inner_layers: only for model.type = \"transformer\"");
    return models::layer_adapt_mask(*transformer, config_.inner_layers);
  }
  return models::adapt_mask(*model_, config_.inner_params);
}

std::vector<Tensor> MetaLearner::meta_parameters() const {
  std::vector<Tensor> all = model_->params();
  all.insert(all.end(), inner_lrs_.begin(), inner_lrs_.end());
  return all;
}

namespace {
void add_grad(const Tensor& target, const Tensor& g) {
  if (!g.defined()) return;
  if (!target.grad().defined())
    target.mutable_grad() = g.detach().clone();
  else
    target.mutable_grad().add_(g.detach());
}

// add_grad of each of `grads` in turn (the chunks' gradients in chunk order), with the same
// result bit for bit, but one loop per gradient for CPU float or double tensors: the twelve
// tensor additions of W1's two chunks cost more in dispatch than in arithmetic, on the one
// thread that the other workers wait for.
void add_grads(const Tensor& target, const std::vector<Tensor>& grads) {
  const Tensor& sum = target.grad();
  const auto fusable = [&](const Tensor& t) {
    return t.device().is_cpu() && t.layout() == torch::kStrided && t.is_contiguous() &&
           t.scalar_type() == sum.scalar_type() && t.sizes() == sum.sizes();
  };
  bool fast = sum.defined() && fusable(sum) &&
              (sum.scalar_type() == torch::kFloat32 || sum.scalar_type() == torch::kFloat64);
  for (const Tensor& g : grads) fast = fast && (!g.defined() || fusable(g));
  if (!fast) {
    for (const Tensor& g : grads) add_grad(target, g);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(sum.scalar_type(), "add_grads", [&] {
    scalar_t* out = sum.data_ptr<scalar_t>();
    for (const Tensor& g : grads) {
      if (!g.defined()) continue;
      const scalar_t* in = g.data_ptr<scalar_t>();
      for (std::int64_t k = 0, n = sum.numel(); k < n; ++k) out[k] = out[k] + in[k];
    }
  });
  sum.unsafeGetTensorImpl()->bump_version();
}
}  // namespace

Tensor MetaLearner::prototypes(const Batch& support, const std::vector<Tensor>& params) const {
  Tensor zs = model_->represent(support, params);
  const std::int64_t classes = kind_ == tasks::LabelKind::kMulticlass ? model_->outputs() : 2;
  Tensor onehot = torch::one_hot(support.target.to(torch::kInt64), classes).to(zs.dtype());
  Tensor counts = onehot.sum(0).clamp_min(1).unsqueeze(1);
  return onehot.t().matmul(zs) / counts;  // [C, h]
}

Tensor MetaLearner::prototype_logits(const Batch& support, const Batch& query,
                                     const std::vector<Tensor>& params) const {
  Tensor zq = model_->represent(query, params);
  return -(zq.unsqueeze(1) - prototypes(support, params).unsqueeze(0)).pow(2).sum(-1);  // [n, C]
}

std::size_t MetaLearner::embedding_tables() const {
  return model_->id_tables();
}

std::vector<bool> MetaLearner::row_sparse_parameters() const {
  const std::size_t count = model_->params().size();
  std::vector<bool> sparse(count + inner_lrs_.size(), false);
  for (std::size_t k = 0; k < embedding_tables(); ++k) {
    sparse[k] = true;
    if (!inner_lrs_.empty()) sparse[count + k] = true;
  }
  return sparse;
}

namespace {

// Rewrites the tasks' ids of each field to slots in that field's distinct ids over the whole
// meta-batch, and returns those distinct ids ([u_k] int64, ascending) per field. The fields are
// independent (each writes its own column), so `pool` computes them side by side: W2's two
// fields took 3 ms of a meta-step on one thread while the other waited.
std::vector<Tensor> localize_ids(std::vector<TaskBatch>& tasks, std::size_t fields,
                                 runtime::WorkerPool* pool) {
  std::vector<Batch*> batches;
  for (auto& t : tasks) {
    for (Batch* b : {&t.support, &t.query}) {
      b->ids = b->ids.clone();  // the caller's batches keep their global ids
      if (b->history.defined()) b->history = b->history.clone();
      batches.push_back(b);
    }
  }
  std::vector<Tensor> distinct(fields);
  auto localize = [&](std::size_t k) {
    const auto field = static_cast<std::int64_t>(k);
    // A user sequence's items are rows of the item table too (models/batch.hpp).
    const auto with_history = [&](const Batch* b) {
      return field == models::kItemIdField && b->history.defined();
    };
    std::vector<Tensor> columns;
    for (const Batch* b : batches) {
      columns.push_back(b->ids.select(1, field));
      if (with_history(b)) columns.push_back(b->history.flatten());
    }
    auto [unique, slots, counts] =
        torch::_unique2(torch::cat(columns), /*sorted=*/true, /*return_inverse=*/true);
    std::int64_t offset = 0;
    for (Batch* b : batches) {
      const std::int64_t n = b->ids.size(0);
      b->ids.select(1, field).copy_(slots.narrow(0, offset, n));
      offset += n;
      if (!with_history(b)) continue;
      b->history.copy_(slots.narrow(0, offset, b->history.numel()).view_as(b->history));
      offset += b->history.numel();
    }
    distinct[k] = unique;
  };
  if (pool)
    pool->run(fields, localize);
  else
    for (std::size_t k = 0; k < fields; ++k) localize(k);
  return distinct;
}

}  // namespace

double MetaLearner::accumulate_meta_gradient(const std::vector<TaskBatch>& tasks) {
  if (tasks.empty()) throw DataError("a meta-batch needs at least one task");
  row_sparse_grads_.clear();
  std::vector<Tensor> params = model_->params(), lrs = inner_lrs_;
  const std::size_t tables = embedding_tables();
  if (tables == 0) return chunked_meta_gradient(tasks, params, lrs);
  // Each table (and its Meta-SGD rates) is replaced by a leaf holding only the rows this
  // meta-batch reads, addressed by local slots: a full-table gradient would be almost all zeros
  // and cost more than the rest of the step.
  std::vector<TaskBatch> local_tasks = tasks;
  const std::vector<Tensor> rows = localize_ids(local_tasks, tables, chunks_ > 1 ? pool_ : nullptr);
  for (std::size_t k = 0; k < tables; ++k) {
    params[k] = params[k].detach().index_select(0, rows[k]).requires_grad_(true);
    if (!lrs.empty()) lrs[k] = lrs[k].detach().index_select(0, rows[k]).requires_grad_(true);
  }
  const double loss = chunked_meta_gradient(local_tasks, params, lrs);
  auto keep = [&](std::size_t parameter, std::size_t k, const Tensor& local) {
    if (local.grad().defined()) row_sparse_grads_.push_back({parameter, rows[k], local.grad()});
  };
  for (std::size_t k = 0; k < tables; ++k) {
    keep(k, k, params[k]);
    if (!lrs.empty()) keep(params.size() + k, k, lrs[k]);
  }
  return loss;
}

void MetaLearner::set_task_chunks(std::size_t chunks, runtime::WorkerPool* pool) {
  chunks_ = std::max<std::size_t>(1, chunks);
  pool_ = pool;
}

std::size_t MetaLearner::chunks_for(std::size_t tasks) const {
  // Pretrain's loss is a mean over the rows of all tasks together, not over tasks.
  if (config_.algorithm == config::Algorithm::kPretrain) return 1;
  return std::max<std::size_t>(1, std::min(tasks, chunks_));
}

double MetaLearner::chunked_meta_gradient(const std::vector<TaskBatch>& tasks,
                                          const std::vector<Tensor>& params,
                                          const std::vector<Tensor>& lrs) {
  const std::size_t total = tasks.size(), chunks = chunks_for(total);
  if (chunks == 1) return meta_gradient(tasks, params, lrs, total);
  // Each chunk differentiates with respect to leaves of its own (sharing the values' storage):
  // concurrent backward passes into one leaf would add their gradients in whichever order the
  // threads happen to finish.
  auto own_leaves = [](const std::vector<Tensor>& shared) {
    std::vector<Tensor> own;
    for (const Tensor& t : shared) own.push_back(t.detach().requires_grad_(t.requires_grad()));
    return own;
  };
  std::vector<std::vector<Tensor>> chunk_params(chunks), chunk_lrs(chunks);
  std::vector<double> losses(chunks, 0.0);
  auto chunk = [&](std::size_t c) {
    const std::vector<TaskBatch> part(
        tasks.begin() + static_cast<std::ptrdiff_t>(c * total / chunks),
        tasks.begin() + static_cast<std::ptrdiff_t>((c + 1) * total / chunks));
    chunk_params[c] = own_leaves(params);
    chunk_lrs[c] = own_leaves(lrs);
    losses[c] = meta_gradient(part, chunk_params[c], chunk_lrs[c], total);
  };
  if (pool_)
    pool_->run(chunks, chunk);
  else
    for (std::size_t c = 0; c < chunks; ++c) chunk(c);
  double loss = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    loss += losses[c];
  }
  auto chunk_grads = [&](const std::vector<std::vector<Tensor>>& leaves, std::size_t i) {
    std::vector<Tensor> grads;
    for (const auto& own : leaves) grads.push_back(own[i].grad());
    return grads;
  };
  for (std::size_t i = 0; i < params.size(); ++i)
    add_grads(params[i], chunk_grads(chunk_params, i));
  for (std::size_t i = 0; i < lrs.size(); ++i) add_grads(lrs[i], chunk_grads(chunk_lrs, i));
  return loss;
}

namespace {

// One side (support or query) of every task in the meta-batch, stacked.
models::StackedBatch stack_side(const std::vector<TaskBatch>& tasks, Batch TaskBatch::*side) {
  std::vector<Batch> parts;
  for (const auto& t : tasks) parts.push_back(t.*side);
  return models::stack_tasks(parts);
}

// ProtoNets over the whole meta-batch: no weight adapts, so every task's support and query are
// one pass each of the shared network. Returns the meta-batch's loss (its mean over `total`
// tasks) after its backward pass.
double stacked_protonet(const models::Network& model, tasks::LabelKind kind,
                        const std::vector<TaskBatch>& meta_batch, const std::vector<Tensor>& params,
                        std::size_t total) {
  const models::StackedBatch support = stack_side(meta_batch, &TaskBatch::support),
                             query = stack_side(meta_batch, &TaskBatch::query);
  const std::int64_t classes = kind == tasks::LabelKind::kMulticlass ? model.outputs() : 2;
  Tensor zs = model.represent_stacked(support, params);  // [T, k, h]
  Tensor zq = model.represent_stacked(query, params);    // [T, q, h]
  // Padding rows (tasks of fewer rows) are left out of the class means and the loss.
  Tensor onehot = torch::one_hot(support.target.to(torch::kInt64), classes).to(zs.dtype()) *
                  support.weight.unsqueeze(-1);                                 // [T, k, C]
  Tensor counts = onehot.sum(1).clamp_min(1).unsqueeze(-1);                     // [T, C, 1]
  Tensor prototypes = onehot.transpose(1, 2).matmul(zs) / counts;               // [T, C, h]
  Tensor logits = -(zq.unsqueeze(2) - prototypes.unsqueeze(1)).pow(2).sum(-1);  // [T, q, C]
  Tensor per_row = torch::nn::functional::cross_entropy(
                       logits.flatten(0, 1), query.target.flatten().to(torch::kInt64),
                       torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                       .view_as(query.weight);
  Tensor loss = ((per_row * query.weight).sum(1) / query.count).sum() / static_cast<double>(total);
  loss.backward();
  return loss.item<double>();
}

}  // namespace

std::size_t MetaLearner::tasks_per_stack(const std::vector<TaskBatch>& tasks) const {
  if (tasks.empty() || config_.algorithm == config::Algorithm::kPretrain ||
      config_.algorithm == config::Algorithm::kScratch || model_->id_tables() > 0)
    return std::max<std::size_t>(1, tasks.size());
  std::int64_t rows = 0;
  for (const auto& t : tasks) rows = std::max(rows, t.support.size() + t.query.size());
  const double bytes = model_->activation_values(rows) * static_cast<double>(sizeof(float));
  if (bytes <= 0) return tasks.size();
  return static_cast<std::size_t>(
      std::clamp(std::floor(kStackCacheBytes / bytes), 1.0, static_cast<double>(tasks.size())));
}

double MetaLearner::meta_gradient(const std::vector<TaskBatch>& tasks,
                                  const std::vector<Tensor>& params, const std::vector<Tensor>& lrs,
                                  std::size_t total) {
  const std::size_t per_stack = tasks_per_stack(tasks);
  if (per_stack >= tasks.size()) return stacked_meta_gradient(tasks, params, lrs, total);
  double loss = 0;
  for (std::size_t first = 0; first < tasks.size(); first += per_stack) {
    const std::vector<TaskBatch> stack(
        tasks.begin() + static_cast<std::ptrdiff_t>(first),
        tasks.begin() + static_cast<std::ptrdiff_t>(std::min(first + per_stack, tasks.size())));
    loss += stacked_meta_gradient(stack, params, lrs, total);
  }
  return loss;
}

double MetaLearner::stacked_meta_gradient(const std::vector<TaskBatch>& tasks,
                                          const std::vector<Tensor>& params,
                                          const std::vector<Tensor>& lrs, std::size_t total) {
  switch (config_.algorithm) {
    case config::Algorithm::kMaml:
    case config::Algorithm::kAnil:
    case config::Algorithm::kMetaSgd:
      return stacked_second_order(tasks, params, lrs, total);
    case config::Algorithm::kFomaml:
      return stacked_first_order(tasks, params, total);
    case config::Algorithm::kReptile:
      return stacked_reptile(tasks, params, total);
    case config::Algorithm::kProtonet:
      return stacked_protonet(*model_, kind_, tasks, params, total);
    case config::Algorithm::kPretrain:
    case config::Algorithm::kScratch:
      break;
  }
  // pretrain: no inner loop
  return per_task_meta_gradient(tasks, params, lrs, total);
}

bool MetaLearner::adapts_embeddings() const {
  for (std::size_t i = 0; i < model_->id_tables(); ++i)
    if (mask_[i]) return true;
  return false;
}

double MetaLearner::stacked_second_order(const std::vector<TaskBatch>& tasks,
                                         const std::vector<Tensor>& params,
                                         const std::vector<Tensor>& lrs, std::size_t total) {
  const auto T = static_cast<std::int64_t>(tasks.size());
  models::StackedBatch support = stack_side(tasks, &TaskBatch::support),
                       query = stack_side(tasks, &TaskBatch::query);
  std::vector<Tensor> rows;
  if (adapts_embeddings()) rows = models::gather_embedding_rows({&support, &query});
  Tensor outputs;
  const bool meta_sgd = config_.algorithm == config::Algorithm::kMetaSgd;
  const double scale = 1.0 / static_cast<double>(total);
  std::vector<Tensor> sums, rate_sums;
  if (const auto loss_sum = stacked_maml_gradient_sum(
          *model_, support, query, params, mask_, kind_, config_.inner_steps, config_.inner_lr,
          scale, sums, meta_sgd ? &lrs : nullptr, meta_sgd ? &rate_sums : nullptr)) {
    for (std::size_t i = 0; i < params.size(); ++i) add_grad(params[i], sums[i]);
    for (std::size_t i = 0; i < rate_sums.size(); ++i) add_grad(lrs[i], rate_sums[i]);
    return *loss_sum * scale;
  }
  if (meta_sgd) {
    // Per-parameter rates do not factor as -lr δᵀx: Meta-SGD keeps per-task weights.
    std::vector<Tensor> fast = per_task_parameters(*model_, params, mask_, T, rows, true);
    std::vector<Tensor> task_lrs = per_task_parameters(*model_, lrs, mask_, T, rows, true);
    fast = stacked_inner_loop(*model_, std::move(fast), mask_, support, kind_, config_.inner_steps,
                              config_.inner_lr, /*create_graph=*/true, &task_lrs);
    outputs = model_->forward_stacked(query, fast);
  } else {
    ImplicitInnerLoop inner(*model_, params, mask_, config_.inner_lr, T, support.rows(), rows);
    for (int s = 0; s < config_.inner_steps; ++s) inner.step(support, kind_);
    outputs = inner.forward(query);
  }
  Tensor loss = models::task_losses(outputs, query, kind_).sum() * scale;
  loss.backward();
  return loss.item<double>();
}

double MetaLearner::stacked_first_order(const std::vector<TaskBatch>& tasks,
                                        const std::vector<Tensor>& params, std::size_t total) {
  const auto T = static_cast<std::int64_t>(tasks.size());
  models::StackedBatch support = stack_side(tasks, &TaskBatch::support),
                       query = stack_side(tasks, &TaskBatch::query);
  std::vector<Tensor> rows;
  if (adapts_embeddings()) rows = models::gather_embedding_rows({&support, &query});
  std::vector<Tensor> fast = per_task_parameters(*model_, params, mask_, T, rows, false);
  fast = stacked_inner_loop(*model_, std::move(fast), mask_, support, kind_, config_.inner_steps,
                            config_.inner_lr, /*create_graph=*/false, nullptr);
  const double scale = 1.0 / static_cast<double>(total);
  std::vector<Tensor> sums;
  if (const auto loss_sum = stacked_gradient_sum(*model_, query, fast, kind_, scale, sums)) {
    for (std::size_t i = 0; i < params.size(); ++i) add_grad(params[i], sums[i]);
    return *loss_sum * scale;
  }
  Tensor loss =
      models::task_losses(model_->forward_stacked(query, fast), query, kind_).sum() * scale;
  loss.backward();  // reaches the weights that do not adapt directly, the adapted leaves below
  for (std::size_t i = 0; i < params.size(); ++i)
    if (mask_[i] && fast[i].grad().defined())
      add_grad(params[i], sum_over_tasks(*model_, i, fast[i].grad(), params[i], rows));
  return loss.item<double>();
}

double MetaLearner::stacked_reptile(const std::vector<TaskBatch>& tasks,
                                    const std::vector<Tensor>& params, std::size_t total) {
  const auto T = static_cast<std::int64_t>(tasks.size());
  std::vector<Batch> supports, queries;
  for (const auto& t : tasks) {
    supports.push_back(t.support);
    queries.push_back(t.query);
  }
  models::StackedBatch all = models::stack_joined_tasks(supports, queries);
  std::vector<Tensor> rows;
  if (adapts_embeddings()) rows = models::gather_embedding_rows({&all});
  // Each task's K-sized minibatch of `all` at every step, and its query rows, exactly as the
  // per-task reference walks through support + query.
  auto step_ranges = [&](int s) {
    RowRanges ranges(tasks.size());
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const std::int64_t k = tasks[t].support.size(), n = k + tasks[t].query.size();
      const std::int64_t lo = (s * k) % n, hi = std::min(lo + k, n);
      ranges[t] = {lo, hi - lo};
    }
    return ranges;
  };
  RowRanges query_ranges(tasks.size());
  for (std::size_t t = 0; t < tasks.size(); ++t)
    query_ranges[t] = {tasks[t].support.size(), tasks[t].query.size()};
  auto stack_rows = [&](const RowRanges& ranges) {
    std::vector<std::vector<std::int64_t>> rows_of(tasks.size());
    for (std::size_t t = 0; t < tasks.size(); ++t)
      for (std::int64_t r = ranges[t].first; r < ranges[t].first + ranges[t].second; ++r)
        rows_of[t].push_back(r);
    return models::select_rows(all, rows_of);
  };
  std::vector<Tensor> fast = per_task_parameters(*model_, params, mask_, T, rows, false);
  // The loss Reptile reports is taken after the walk's first step, whose rows are exactly each
  // task's support: later steps train on the query rows, and a loss at the walk's end would
  // score rows it has just fitted. By hand (dense_backprop.hpp) each step reads its rows of
  // `all` in place; otherwise they are stacked anew for autograd's loop. The first step decides.
  double loss = 0;
  bool by_hand = true;
  for (int s = 0; s < config_.inner_steps; ++s) {
    const RowRanges ranges = step_ranges(s);
    if (by_hand)
      by_hand =
          stacked_sgd_step_on_rows(*model_, fast, mask_, all, ranges, kind_, config_.inner_lr);
    if (!by_hand)
      fast = stacked_inner_loop(*model_, std::move(fast), mask_, stack_rows(ranges), kind_, 1,
                                config_.inner_lr, /*create_graph=*/false, nullptr);
    if (s != 0) continue;
    const auto query_loss = by_hand
                                ? stacked_loss_sum_on_rows(*model_, all, fast, kind_, query_ranges)
                                : std::optional<double>(stacked_loss_sum(
                                      *model_, stack_rows(query_ranges), fast, kind_));
    loss = *query_loss / static_cast<double>(total);
  }
  const double scale = 1.0 / static_cast<double>(total);
  for (std::size_t i = 0; i < params.size(); ++i)
    if (mask_[i])
      add_grad(params[i], sum_of_task_moves(*model_, i, params[i], fast[i], scale, rows));
  return loss;
}

double MetaLearner::accumulate_meta_gradient_per_task(const std::vector<TaskBatch>& tasks) {
  if (tasks.empty()) throw DataError("a meta-batch needs at least one task");
  return per_task_meta_gradient(tasks, model_->params(), inner_lrs_, tasks.size());
}

double MetaLearner::per_task_meta_gradient(const std::vector<TaskBatch>& tasks,
                                           const std::vector<Tensor>& params,
                                           const std::vector<Tensor>& lrs, std::size_t meta_batch) {
  using config::Algorithm;
  const Algorithm algo = config_.algorithm;
  const double scale = 1.0 / static_cast<double>(meta_batch);
  double total = 0;

  if (algo == Algorithm::kPretrain) {
    std::vector<Batch> parts;
    for (const auto& t : tasks) {
      parts.push_back(t.support);
      parts.push_back(t.query);
      if (!t.classes.defined()) continue;
      // Text episodes label their classes 0..N-1 afresh each time: the joint head needs the
      // class itself.
      if (t.classes.lt(0).any().item<bool>() || t.classes.ge(model_->outputs()).any().item<bool>())
        throw DataError("pretrain: an episode holds a class outside the " +
                        std::to_string(model_->outputs()) +
                        " training classes its joint head has rows for");
      for (Batch* b : {&parts[parts.size() - 2], &parts.back()})
        b->target = t.classes.index_select(0, b->target.to(torch::kInt64));
    }
    Batch all = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i) all = models::concat(all, parts[i]);
    Tensor loss = models::task_loss(model_->forward(all, params), all.target, kind_);
    loss.backward();
    return loss.item<double>();
  }
  for (const auto& t : tasks) {
    if (algo == Algorithm::kProtonet) {
      Tensor loss =
          torch::nn::functional::cross_entropy(prototype_logits(t.support, t.query, params),
                                               t.query.target.to(torch::kInt64)) *
          scale;
      loss.backward();
      total += loss.item<double>();
    } else if (algo == Algorithm::kMaml || algo == Algorithm::kAnil ||
               algo == Algorithm::kMetaSgd) {
      auto fast = inner_loop(*model_, params, mask_, t.support, kind_, config_.inner_steps,
                             config_.inner_lr, /*create_graph=*/true,
                             algo == Algorithm::kMetaSgd ? &lrs : nullptr);
      Tensor loss =
          models::task_loss(model_->forward(t.query, fast), t.query.target, kind_) * scale;
      loss.backward();
      total += loss.item<double>();
    } else if (algo == Algorithm::kFomaml) {
      auto fast = inner_loop(*model_, params, mask_, t.support, kind_, config_.inner_steps,
                             config_.inner_lr, /*create_graph=*/false);
      Tensor loss =
          models::task_loss(model_->forward(t.query, fast), t.query.target, kind_) * scale;
      loss.backward();  // reaches the unadapted weights directly, the adapted leaves below
      for (std::size_t i = 0; i < params.size(); ++i)
        if (mask_[i]) add_grad(params[i], fast[i].grad());
      total += loss.item<double>();
    } else if (algo == Algorithm::kReptile) {
      Batch all = models::concat(t.support, t.query);
      const std::int64_t k = t.support.size(), n = all.size();
      std::vector<Tensor> fast;
      for (const auto& p : params) fast.push_back(p.detach().clone().requires_grad_(true));
      for (int s = 0; s < config_.inner_steps; ++s) {
        const std::int64_t lo = (s * k) % n;
        const std::int64_t hi = std::min(lo + k, n);
        fast =
            inner_loop(*model_, fast, mask_, all.rows(lo, hi), kind_, 1, config_.inner_lr, false);
        if (s == 0) {  // the support alone: the logged loss (see stacked_reptile)
          torch::NoGradGuard no_grad;
          total += models::task_loss(model_->forward(t.query, fast), t.query.target, kind_)
                       .item<double>() *
                   scale;
        }
      }
      for (std::size_t i = 0; i < params.size(); ++i)
        add_grad(params[i], (params[i].detach() - fast[i].detach()) * scale);
    } else {
      throw ConfigError("meta.algorithm = \"" + enum_name(algo) + "\" has no meta-training step");
    }
  }
  return total;
}

std::vector<Tensor> MetaLearner::adapt_one_task(
    const models::StackedBatch& support, const std::vector<Tensor>& rows, int steps,
    const std::function<void(int, const std::vector<Tensor>&)>& after_step) const {
  std::vector<Tensor> params, lrs;
  for (const auto& p : model_->params()) params.push_back(p.detach());
  for (const auto& lr : inner_lrs_) lrs.push_back(lr.detach());
  std::vector<Tensor> fast = per_task_parameters(*model_, params, mask_, 1, rows, false);
  if (!lrs.empty()) lrs = per_task_parameters(*model_, lrs, mask_, 1, rows, false);
  if (after_step) after_step(0, fast);
  for (int done = 1; done <= steps; ++done) {
    fast = stacked_inner_loop(*model_, std::move(fast), mask_, support, kind_, 1, config_.inner_lr,
                              /*create_graph=*/false, lrs.empty() ? nullptr : &lrs);
    if (after_step) after_step(done, fast);
  }
  return fast;
}

std::vector<Tensor> MetaLearner::adapted_parameters(const Batch& support, int steps) const {
  std::vector<Tensor> params;
  for (const auto& p : model_->params()) params.push_back(p.detach());
  if (config_.algorithm == config::Algorithm::kProtonet || steps <= 0) return params;
  models::StackedBatch stacked = models::stack_tasks({support});
  std::vector<Tensor> rows;
  if (adapts_embeddings()) rows = models::gather_embedding_rows({&stacked});
  const std::vector<Tensor> fast = adapt_one_task(stacked, rows, steps, nullptr);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!mask_[i]) continue;
    if (i < model_->id_tables())
      // Only the task's own rows moved; the saved model carries the whole table.
      params[i] = params[i].clone().index_copy_(0, rows[i][0], fast[i][0].detach());
    else
      params[i] = fast[i][0].detach();
  }
  return params;
}

std::vector<Tensor> MetaLearner::outputs_at_steps(const Batch& support, const Batch& query,
                                                  const std::vector<int>& steps) const {
  for (int s : steps)
    if (s < 0) throw std::invalid_argument("outputs_at_steps: negative step count");
  if (steps.empty()) return {};
  if (config_.algorithm == config::Algorithm::kProtonet)
    return std::vector<Tensor>(steps.size(), adapted_outputs(support, query, 0));
  const int last = *std::max_element(steps.begin(), steps.end());
  // A new task is a stack of one: adapted embeddings then touch only the task's own rows
  // instead of copying whole tables, and one adaptation serves every requested step count.
  models::StackedBatch stacked_support = models::stack_tasks({support});
  models::StackedBatch stacked_query = models::stack_tasks({query});
  std::vector<Tensor> rows;
  if (adapts_embeddings()) rows = models::gather_embedding_rows({&stacked_support, &stacked_query});
  std::map<int, Tensor> recorded;
  adapt_one_task(stacked_support, rows, last, [&](int done, const std::vector<Tensor>& fast) {
    if (std::find(steps.begin(), steps.end(), done) == steps.end()) return;
    torch::NoGradGuard no_grad;
    recorded[done] = model_->forward_stacked(stacked_query, fast)[0];
  });
  std::vector<Tensor> out;
  for (int s : steps) out.push_back(recorded.at(s));
  return out;
}

Tensor MetaLearner::adapted_outputs(const Batch& support, const Batch& query, int steps) const {
  if (config_.algorithm == config::Algorithm::kProtonet) {
    torch::NoGradGuard no_grad;
    std::vector<Tensor> params = model_->params();
    Tensor logits = prototype_logits(support, query, params);
    if (kind_ == tasks::LabelKind::kBinary)  // one logit: log-odds of class 1 against class 0
      return (logits.select(1, 1) - logits.select(1, 0)).unsqueeze(1);
    return logits;
  }
  return outputs_at_steps(support, query, {steps})[0];
}

}  // namespace ml::meta
