// The implicit second-order inner loop: see implicit_inner_loop.hpp.
#include "meta/implicit_inner_loop.hpp"

#include <stdexcept>

#include "meta/stacked_inner_loop.hpp"
#include "models/batched_matmul.hpp"

namespace ml::meta {

using torch::Tensor;

bool implicit_layer_pays(std::int64_t in, std::int64_t out, std::int64_t support_rows) {
  // Per step the explicit form writes a [out, in] gradient and weight per task; the implicit
  // one appends [rows, in + out]. Below that, its extra products do not pay.
  return in * out > support_rows * (in + out + 1);
}

ImplicitInnerLoop::ImplicitInnerLoop(const models::Network& model, std::vector<Tensor> params,
                                     const std::vector<bool>& mask, double lr, std::int64_t tasks,
                                     std::int64_t support_rows,
                                     const std::vector<Tensor>& embedding_rows, Layers layers)
    : model_(model),
      mlp_(dynamic_cast<const models::FunctionalModelImpl*>(&model)),
      params_(std::move(params)),
      explicit_mask_(mask),
      implicit_(params_.size(), false),
      inputs_(params_.size()),
      deltas_(params_.size()),
      constant_kernels_(params_.size()),
      lr_(lr) {
  const auto& groups = model.groups();
  for (std::size_t i = 0; mlp_ && i + 1 < params_.size(); ++i) {
    const bool linear_weight = groups[i] != models::ParamGroup::kEmbedding && params_[i].dim() == 2;
    if (!linear_weight || !mask[i]) continue;
    if (!mask[i + 1]) throw std::logic_error("a layer's weight adapts but not its bias");
    if (layers == Layers::kWhereCheaper &&
        !implicit_layer_pays(params_[i].size(1), params_[i].size(0), support_rows))
      continue;
    implicit_[i] = true;
    explicit_mask_[i] = explicit_mask_[i + 1] = false;
  }
  fast_ = per_task_parameters(model, params_, explicit_mask_, tasks, embedding_rows, true);
}

std::size_t ImplicitInnerLoop::implicit_layers() const {
  std::size_t n = 0;
  for (bool b : implicit_) n += b;
  return n;
}

namespace {

// A layer input that is the same data at every step (the first layer's features when nothing
// before it adapts).
bool same_constant(const Tensor& a, const Tensor& b) {
  return a.defined() && a.is_same(b) && !a.requires_grad();
}

}  // namespace

Tensor ImplicitInnerLoop::implicit_linear(std::size_t weight, const Tensor& x) const {
  Tensor y = mlp_->linear_stacked(x, params_, weight);
  const Tensor& history = inputs_[weight];
  if (!history.defined()) return y;
  // The support kernel of a constant input is the same at every step: computed once.
  const bool constant = same_constant(history, x);
  Tensor& cached = constant_kernels_[weight];
  Tensor kernel = constant && cached.defined()
                      ? cached
                      : models::batched_matmul(x, history, false, /*transpose_b=*/true) + 1;
  if (constant) cached = kernel;
  return torch::sub(y, models::batched_matmul(kernel, deltas_[weight]), lr_);
}

void ImplicitInnerLoop::step(const models::StackedBatch& support, tasks::LabelKind kind) {
  std::vector<Tensor> layer_inputs(params_.size()), layer_outputs(params_.size());
  auto linear = [&](std::size_t w, const Tensor& x) {
    if (!implicit_[w]) return mlp_->linear_stacked(x, fast_, w);
    layer_inputs[w] = x;
    return layer_outputs[w] = implicit_linear(w, x);
  };
  Tensor outputs;
  if (mlp_) {
    outputs = mlp_->forward_stacked(support, fast_, linear);
  } else {
    if (!prefix_key_.defined() || !prefix_key_.is_same(support.dense)) {
      support_prefix_ =
          model_.stacked_prefix(support, fast_, models::first_adapted(explicit_mask_));
      prefix_key_ = support.dense;
    }
    outputs = model_.forward_stacked_from(support_prefix_, support, fast_);
  }
  Tensor loss = models::task_losses(outputs, support, kind).sum();
  std::vector<Tensor> wrt;
  for (std::size_t i = 0; i < fast_.size(); ++i) {
    if (explicit_mask_[i]) wrt.push_back(fast_[i]);
    if (implicit_[i]) wrt.push_back(layer_outputs[i]);
  }
  auto grads = torch::autograd::grad({loss}, wrt, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                     /*create_graph=*/true, /*allow_unused=*/true);
  std::size_t k = 0;
  for (std::size_t i = 0; i < fast_.size(); ++i) {
    if (!explicit_mask_[i] && !implicit_[i]) continue;
    const Tensor& g = grads[k++];
    if (!g.defined()) continue;
    if (explicit_mask_[i]) {
      fast_[i] = torch::sub(fast_[i], g, lr_);
      continue;
    }
    const Tensor& delta = g;  // the step's -lr is applied in implicit_linear
    if (same_constant(inputs_[i], layer_inputs[i])) {
      // The same inputs at every step: x X_1ᵀ D_1 + x X_1ᵀ D_2 = x X_1ᵀ (D_1 + D_2), so one
      // block of rows holds the whole history.
      deltas_[i] = deltas_[i] + delta;
    } else if (inputs_[i].defined()) {
      inputs_[i] = torch::cat({inputs_[i], layer_inputs[i]}, 1);
      deltas_[i] = torch::cat({deltas_[i], delta}, 1);
    } else {
      inputs_[i] = layer_inputs[i];
      deltas_[i] = delta;
    }
  }
}

Tensor ImplicitInnerLoop::forward(const models::StackedBatch& batch) const {
  if (!mlp_) return model_.forward_stacked(batch, fast_);
  return mlp_->forward_stacked(batch, fast_, [&](std::size_t w, const Tensor& x) {
    return implicit_[w] ? implicit_linear(w, x) : mlp_->linear_stacked(x, fast_, w);
  });
}

}  // namespace ml::meta
