// The task-batched inner loop: see stacked_inner_loop.hpp.
#include "meta/stacked_inner_loop.hpp"

#include <algorithm>
#include <cstring>

#include "models/dense_backprop.hpp"
#include "models/dense_second_order.hpp"
#include "models/model.hpp"

namespace ml::meta {

using torch::Tensor;

namespace {

// The dense layers' tensors of `p` (from the first tower weight on), detached: the hand-written
// pass reads and updates their storage directly.
std::vector<Tensor> dense_layers(const models::FunctionalModelImpl& model,
                                 const std::vector<Tensor>& p) {
  std::vector<Tensor> layers;
  for (std::size_t i = model.first_dense_parameter(); i < p.size(); ++i)
    layers.push_back(p[i].detach());
  return layers;
}

// The first-order steps by hand (on `rows` of each task, or all); false (nothing done) where
// they do not apply.
// The MLP, whose forward the hand-written passes know; nullptr for other networks.
const models::FunctionalModelImpl* mlp(const models::Network& model) {
  return dynamic_cast<const models::FunctionalModelImpl*>(&model);
}

bool first_order_steps_by_hand(const models::Network& network, const std::vector<Tensor>& fast,
                               const std::vector<bool>& mask, const models::StackedBatch& support,
                               tasks::LabelKind kind, int steps, double lr,
                               const RowRanges& rows = {}) {
  const models::FunctionalModelImpl* model_ptr = mlp(network);
  if (!model_ptr) return false;
  const models::FunctionalModelImpl& model = *model_ptr;
  const std::size_t first = model.first_dense_parameter();
  for (std::size_t i = 0; i < fast.size(); ++i)
    if (mask[i] && (i < first || !model.per_task(i, fast[i]))) return false;
  torch::NoGradGuard no_grad;
  const Tensor x0 = model.tower_input_stacked(support, fast).contiguous();
  const std::vector<Tensor> layers = dense_layers(model, fast);
  if (!models::dense_pass_supports(x0, layers)) return false;
  models::DensePassPlan plan;
  for (std::size_t i = first; i < fast.size(); ++i)
    plan.use.push_back(mask[i] ? models::GradientUse::kSgdStep : models::GradientUse::kIgnore);
  plan.lr = lr;
  plan.rows = rows;
  for (int s = 0; s < steps; ++s) models::dense_pass(x0, layers, support, kind, plan);
  return true;
}

}  // namespace

double stacked_loss_sum(const models::Network& model, const models::StackedBatch& batch,
                        const std::vector<Tensor>& fast, tasks::LabelKind kind) {
  if (const auto loss = stacked_loss_sum_on_rows(model, batch, fast, kind, {})) return *loss;
  torch::NoGradGuard no_grad;
  return models::task_losses(model.forward_stacked(batch, fast), batch, kind).sum().item<double>();
}

std::optional<double> stacked_loss_sum_on_rows(const models::Network& network,
                                               const models::StackedBatch& batch,
                                               const std::vector<Tensor>& fast,
                                               tasks::LabelKind kind, const RowRanges& rows) {
  const models::FunctionalModelImpl* model_ptr = mlp(network);
  if (!model_ptr) return std::nullopt;
  const models::FunctionalModelImpl& model = *model_ptr;
  torch::NoGradGuard no_grad;
  const Tensor x0 = model.tower_input_stacked(batch, fast).contiguous();
  const std::vector<Tensor> layers = dense_layers(model, fast);
  if (!models::dense_pass_supports(x0, layers)) return std::nullopt;
  models::DensePassPlan plan;
  plan.use.assign(layers.size(), models::GradientUse::kIgnore);
  plan.rows = rows;
  return models::dense_pass(x0, layers, batch, kind, plan);
}

bool stacked_sgd_step_on_rows(const models::Network& model, const std::vector<Tensor>& fast,
                              const std::vector<bool>& mask, const models::StackedBatch& batch,
                              const RowRanges& rows, tasks::LabelKind kind, double lr) {
  return first_order_steps_by_hand(model, fast, mask, batch, kind, 1, lr, rows);
}

std::optional<double> stacked_gradient_sum(const models::Network& network,
                                           const models::StackedBatch& batch,
                                           const std::vector<Tensor>& fast, tasks::LabelKind kind,
                                           double scale, std::vector<Tensor>& sums) {
  const models::FunctionalModelImpl* model_ptr = mlp(network);
  if (!model_ptr || model_ptr->first_dense_parameter() != 0) return std::nullopt;
  const models::FunctionalModelImpl& model = *model_ptr;
  torch::NoGradGuard no_grad;
  const Tensor x0 = batch.dense.contiguous();
  const std::vector<Tensor> layers = dense_layers(model, fast);
  if (!models::dense_pass_supports(x0, layers)) return std::nullopt;
  models::DensePassPlan plan;
  plan.use.assign(layers.size(), models::GradientUse::kSumOverTasks);
  plan.scale = scale;
  for (const Tensor& p : model.params())
    plan.sums.push_back(torch::zeros(p.sizes(), p.options().requires_grad(false)));
  const double loss = models::dense_pass(x0, layers, batch, kind, plan);
  sums = std::move(plan.sums);
  return loss;
}

std::optional<double> stacked_maml_gradient_sum(
    const models::Network& network, const models::StackedBatch& support,
    const models::StackedBatch& query, const std::vector<Tensor>& params,
    const std::vector<bool>& mask, tasks::LabelKind kind, int steps, double lr, double scale,
    std::vector<Tensor>& sums, const std::vector<Tensor>* rates, std::vector<Tensor>* rate_sums) {
  const models::FunctionalModelImpl* model_ptr = mlp(network);
  if (!model_ptr) return std::nullopt;
  const models::FunctionalModelImpl& model = *model_ptr;
  const auto first = static_cast<std::ptrdiff_t>(model.first_dense_parameter());
  if (std::any_of(mask.begin(), mask.begin() + first, [](bool adapts) { return adapts; }))
    return std::nullopt;  // adapted embedding rows: not a dense pass
  // The tower's inputs, differentiable with respect to the embedding tables in them.
  const Tensor support_input = model.tower_input_stacked(support, params),
               query_input = model.tower_input_stacked(query, params);
  const Tensor support_x = support_input.detach().contiguous(),
               query_x = query_input.detach().contiguous();
  const std::vector<Tensor> layers = dense_layers(model, params);
  if (!models::dense_maml_supports(support_x, query_x, layers)) return std::nullopt;
  models::SecondOrderPlan plan;
  plan.adapt.assign(mask.begin() + first, mask.end());
  plan.steps = steps;
  plan.lr = lr;
  plan.scale = scale;
  for (const Tensor& p : layers) plan.sums.push_back(torch::zeros_like(p));
  if (rates) {
    for (std::size_t i = static_cast<std::size_t>(first); i < params.size(); ++i) {
      plan.rates.push_back((*rates)[i].detach().contiguous());
      plan.rate_sums.push_back(torch::zeros_like(layers[plan.rates.size() - 1]));
    }
  }
  const bool tables = first > 0;
  if (tables) {
    plan.support_input_grad = torch::zeros_like(support_x);
    plan.query_input_grad = torch::zeros_like(query_x);
  }
  const double loss =
      models::dense_maml_gradient(support_x, support, query_x, query, layers, kind, plan);
  sums.assign(params.size(), Tensor());
  if (tables) {
    std::vector<Tensor> inputs(params.begin(), params.begin() + first);
    const auto grads = torch::autograd::grad({support_input, query_input}, inputs,
                                             {plan.support_input_grad, plan.query_input_grad},
                                             /*retain_graph=*/false, /*create_graph=*/false,
                                             /*allow_unused=*/true);
    std::copy(grads.begin(), grads.end(), sums.begin());
  }
  std::copy(plan.sums.begin(), plan.sums.end(), sums.begin() + first);
  if (rates) {
    rate_sums->assign(params.size(), Tensor());
    for (std::size_t e = 0; e < plan.rate_sums.size(); ++e)
      if (plan.adapt[e]) (*rate_sums)[static_cast<std::size_t>(first) + e] = plan.rate_sums[e];
  }
  return loss;
}

std::vector<Tensor> per_task_parameters(const models::Network& model,
                                        const std::vector<Tensor>& params,
                                        const std::vector<bool>& mask, std::int64_t tasks,
                                        const std::vector<Tensor>& embedding_rows,
                                        bool differentiable) {
  std::vector<Tensor> out;
  out.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!mask[i]) {
      out.push_back(params[i]);
      continue;
    }
    Tensor source = differentiable ? params[i] : params[i].detach();
    if (i < model.id_tables()) {
      const Tensor& rows = embedding_rows.at(i);
      Tensor copy =
          source.index_select(0, rows.reshape({-1})).view({tasks, rows.size(1), source.size(1)});
      out.push_back(differentiable ? copy : copy.clone().requires_grad_(true));
      continue;
    }
    std::vector<std::int64_t> shape = source.sizes().vec();
    shape.insert(shape.begin(), tasks);
    if (differentiable) {
      out.push_back(source.unsqueeze(0).expand(shape));
      continue;
    }
    // Fresh memory, never a view: with one task an expanded view may share the parameter's
    // storage, which the in-place first-order steps would overwrite.
    Tensor copy;
    if (source.device().is_cpu() && source.is_contiguous()) {
      // One copy of the bytes per task: expand + clone was a strided copy through
      // TensorIterator, ~5% of W1 fomaml's meta-step.
      copy = torch::empty(shape, source.options());
      const std::size_t bytes = source.nbytes();
      auto* to = static_cast<char*>(copy.data_ptr());
      for (std::int64_t t = 0; t < tasks && bytes > 0; ++t)
        std::memcpy(to + static_cast<std::size_t>(t) * bytes, source.data_ptr(), bytes);
    } else {
      copy = source.unsqueeze(0).expand(shape).clone();
    }
    out.push_back(copy.requires_grad_(true));
  }
  return out;
}

std::vector<Tensor> stacked_inner_loop(const models::Network& model, std::vector<Tensor> fast,
                                       const std::vector<bool>& mask,
                                       const models::StackedBatch& support, tasks::LabelKind kind,
                                       int steps, double lr, bool create_graph,
                                       const std::vector<Tensor>* per_param_lr) {
  if (!create_graph && per_param_lr == nullptr &&
      first_order_steps_by_hand(model, fast, mask, support, kind, steps, lr))
    return fast;
  // What the parameters below the first adapted one compute on the support set is the same at
  // every step: computed once. A first-order loop never differentiates it.
  models::StackedPrefix prefix;
  if (steps > 1) {
    std::optional<torch::NoGradGuard> no_graph;
    if (!create_graph) no_graph.emplace();
    prefix = model.stacked_prefix(support, fast, models::first_adapted(mask));
  }
  std::vector<Tensor> inputs;
  for (int s = 0; s < steps; ++s) {
    Tensor loss =
        models::task_losses(prefix.defined() ? model.forward_stacked_from(prefix, support, fast)
                                             : model.forward_stacked(support, fast),
                            support, kind)
            .sum();
    inputs.clear();
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
      if (create_graph) {
        fast[i] = per_param_lr ? fast[i] - (*per_param_lr)[i] * g : torch::sub(fast[i], g, lr);
      } else {
        // First order: the step is taken in place on fresh leaves, with no graph to keep.
        torch::NoGradGuard no_grad;
        Tensor next = fast[i].detach();
        if (per_param_lr)
          next.sub_((*per_param_lr)[i] * g);
        else
          next.sub_(g, lr);
        fast[i] = next.requires_grad_(true);
      }
    }
  }
  return fast;
}

Tensor sum_over_tasks(const models::Network& model, std::size_t i, const Tensor& per_task,
                      const Tensor& shared, const std::vector<Tensor>& embedding_rows) {
  if (i >= model.id_tables()) return per_task.sum(0);
  const Tensor& rows = embedding_rows.at(i);
  return torch::zeros_like(shared).index_add_(0, rows.reshape({-1}),
                                              per_task.reshape({-1, shared.size(1)}));
}

Tensor sum_of_task_moves(const models::Network& model, std::size_t i, const Tensor& shared,
                         const Tensor& fast, double scale,
                         const std::vector<Tensor>& embedding_rows) {
  torch::NoGradGuard no_grad;
  const Tensor theta = shared.detach(), phi = fast.detach();
  if (i < model.id_tables()) {
    const Tensor start = theta.index_select(0, embedding_rows.at(i).reshape({-1})).view_as(phi);
    return sum_over_tasks(model, i, (start - phi) * scale, theta, embedding_rows);
  }
  // Six tensor operations per parameter (difference, scaling, sum, each over the whole
  // [T, ...] stack) were ~15% of W1 Reptile's meta-step, more in dispatch than arithmetic.
  if (models::task_move_sum_supports(theta, phi)) return models::task_move_sum(theta, phi, scale);
  return ((theta.unsqueeze(0) - phi) * scale).sum(0);
}

}  // namespace ml::meta
