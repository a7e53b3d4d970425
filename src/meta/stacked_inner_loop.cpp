// The task-batched inner loop: see stacked_inner_loop.hpp.
#include "meta/stacked_inner_loop.hpp"

namespace ml::meta {

using torch::Tensor;

std::vector<Tensor> per_task_parameters(const models::FunctionalModelImpl& model,
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
    Tensor copy;
    if (model.groups()[i] == models::ParamGroup::kEmbedding) {
      const Tensor& rows = embedding_rows.at(i);
      copy = source.index_select(0, rows.reshape({-1})).view({tasks, rows.size(1), source.size(1)});
    } else {
      std::vector<std::int64_t> shape = source.sizes().vec();
      shape.insert(shape.begin(), tasks);
      copy = source.unsqueeze(0).expand(shape);
    }
    // clone, not contiguous(): with one task the expanded view may already be contiguous and
    // share the parameter's storage, which the in-place first-order steps would overwrite.
    out.push_back(differentiable ? copy : copy.clone().requires_grad_(true));
  }
  return out;
}

std::vector<Tensor> stacked_inner_loop(const models::FunctionalModelImpl& model,
                                       std::vector<Tensor> fast, const std::vector<bool>& mask,
                                       const models::StackedBatch& support, tasks::LabelKind kind,
                                       int steps, double lr, bool create_graph,
                                       const std::vector<Tensor>* per_param_lr) {
  std::vector<Tensor> inputs;
  for (int s = 0; s < steps; ++s) {
    Tensor loss = models::task_losses(model.forward_stacked(support, fast), support, kind).sum();
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

Tensor sum_over_tasks(const models::FunctionalModelImpl& model, std::size_t i,
                      const Tensor& per_task, const Tensor& shared,
                      const std::vector<Tensor>& embedding_rows) {
  if (model.groups()[i] != models::ParamGroup::kEmbedding) return per_task.sum(0);
  const Tensor& rows = embedding_rows.at(i);
  return torch::zeros_like(shared).index_add_(0, rows.reshape({-1}),
                                              per_task.reshape({-1, shared.size(1)}));
}

}  // namespace ml::meta
