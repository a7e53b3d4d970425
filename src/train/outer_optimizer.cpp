// Dense and row-sparse outer optimisation: see outer_optimizer.hpp.
#include "train/outer_optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "train/adam_update.hpp"
#include "util/errors.hpp"

namespace ml::train {

using torch::Tensor;

namespace {

// torch::optim::Adam's defaults, which the dense optimiser runs with.
const torch::optim::AdamOptions kAdamDefaults;

}  // namespace

namespace {

// Σx² over a gradient's values, in double. A loop for CPU float or double tensors: W1's six
// parameters took ~100 us as torch norm operations, most of it dispatch.
double squared_norm(const Tensor& gradient) {
  const Tensor t = gradient.is_contiguous() ? gradient : gradient.contiguous();
  const auto sum = [&](const auto* x) {
    // Four running sums, so the additions do not wait on each other.
    double part[4] = {0, 0, 0, 0};
    const std::int64_t n = t.numel();
    std::int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < 4; ++k) part[k] += double(x[i + k]) * double(x[i + k]);
    for (; i < n; ++i) part[0] += double(x[i]) * double(x[i]);
    return (part[0] + part[1]) + (part[2] + part[3]);
  };
  if (t.device().is_cpu() && t.layout() == torch::kStrided) {
    if (t.scalar_type() == torch::kFloat32) return sum(t.data_ptr<float>());
    if (t.scalar_type() == torch::kFloat64) return sum(t.data_ptr<double>());
  }
  return t.to(torch::kFloat64).pow(2).sum().item<double>();
}

// The joint L2 norm of the dense parameters' .grad() and the row-sparse values; nullopt when
// there is no gradient at all.
std::optional<double> joint_norm(const std::vector<Tensor>& dense,
                                 const std::vector<meta::RowSparseGradient>& sparse) {
  torch::NoGradGuard no_grad;
  bool any = false;
  double total = 0;
  for (const auto& p : dense)
    if (p.grad().defined()) total += squared_norm(p.grad()), any = true;
  for (const auto& g : sparse) total += squared_norm(g.values), any = true;
  if (!any) return std::nullopt;
  return std::sqrt(total);
}

// Scales both kinds of gradient by min(1, max_norm / total) (clip_grad_norm_'s formula).
void scale_to_norm(double total, double max_norm, const std::vector<Tensor>& dense,
                   std::vector<meta::RowSparseGradient>& sparse) {
  const double scale = std::min(1.0, max_norm / (total + 1e-6));
  if (scale == 1.0) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : dense)
    if (p.grad().defined()) p.grad().mul_(scale);
  // The values may be the learner's own gradient tensors: scale a copy.
  for (auto& g : sparse) g.values = g.values * scale;
}

}  // namespace

double clip_gradients(const std::vector<Tensor>& dense,
                      std::vector<meta::RowSparseGradient>& sparse, double max_norm) {
  const std::optional<double> total = joint_norm(dense, sparse);
  if (!total) return 0.0;
  scale_to_norm(*total, max_norm, dense, sparse);
  return *total;
}

OuterOptimizer::OuterOptimizer(const config::MetaConfig& meta, std::vector<Tensor> params,
                               const std::vector<bool>& row_sparse,
                               const std::vector<double>& learning_rates)
    : meta_(meta), params_(std::move(params)), row_sparse_(row_sparse) {
  row_sparse_.resize(params_.size(), false);
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
  // Dense parameters at another rate than meta.outer_lr, by rate in first-seen order.
  std::vector<std::pair<double, std::vector<Tensor>>> other_rates;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const double rate = i < learning_rates.size() ? learning_rates[i] : meta_.outer_lr;
    if (!row_sparse_[i] && rate != meta_.outer_lr) {
      auto at = std::find_if(other_rates.begin(), other_rates.end(),
                             [&](const auto& group) { return group.first == rate; });
      if (at == other_rates.end()) at = other_rates.insert(other_rates.end(), {rate, {}});
      at->second.push_back(params_[i]);
      continue;
    }
    if (!row_sparse_[i]) {
      dense_params_.push_back(params_[i]);
    } else if (meta_.outer_optimizer == config::OuterOptimizer::kAdam) {
      exp_avg_[i] = torch::zeros_like(params_[i], torch::MemoryFormat::Contiguous);
      exp_avg_sq_[i] = torch::zeros_like(params_[i], torch::MemoryFormat::Contiguous);
    }
  }
  if (dense_params_.empty() && other_rates.empty()) return;
  const bool sgd = meta_.outer_optimizer == config::OuterOptimizer::kSgd;
  if (other_rates.empty()) {
    if (sgd)
      dense_ = std::make_unique<torch::optim::SGD>(dense_params_,
                                                   torch::optim::SGDOptions(meta_.outer_lr));
    else
      dense_ = std::make_unique<torch::optim::Adam>(dense_params_,
                                                    torch::optim::AdamOptions(meta_.outer_lr));
    return;
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto options = [&](double rate) -> std::unique_ptr<torch::optim::OptimizerOptions> {
    if (sgd) return std::make_unique<torch::optim::SGDOptions>(rate);
    return std::make_unique<torch::optim::AdamOptions>(rate);
  };
  if (!dense_params_.empty()) groups.emplace_back(dense_params_, options(meta_.outer_lr));
  for (auto& [rate, tensors] : other_rates) {
    groups.emplace_back(tensors, options(rate));
    dense_params_.insert(dense_params_.end(), tensors.begin(), tensors.end());
  }
  if (sgd)
    dense_ = std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(meta_.outer_lr));
  else
    dense_ =
        std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(meta_.outer_lr));
}

void OuterOptimizer::zero_grad() {
  if (dense_) dense_->zero_grad();
}

double OuterOptimizer::step(std::vector<meta::RowSparseGradient> sparse) {
  for (const auto& g : sparse)
    if (g.parameter >= params_.size() || !row_sparse_[g.parameter])
      throw std::logic_error("a row-sparse gradient for parameter " + std::to_string(g.parameter) +
                             ", which the optimiser does not update row-sparsely");
  const std::optional<double> total = joint_norm(dense_params_, sparse);
  const double norm = total.value_or(0.0);
  if (!std::isfinite(norm)) return norm;
  if (meta_.grad_clip > 0 && total) scale_to_norm(norm, meta_.grad_clip, dense_params_, sparse);
  if (dense_ && meta_.outer_optimizer == config::OuterOptimizer::kAdam)
    dense_adam_step();
  else if (dense_)
    dense_->step();
  ++sparse_steps_;
  for (const auto& g : sparse) {
    if (meta_.outer_optimizer == config::OuterOptimizer::kSgd)
      lazy_sgd_step(g);
    else
      lazy_adam_step(g);
  }
  return norm;
}

// Adam on the touched rows with the dense step's arithmetic (adam_update_rows), so a touched row
// ends up bit-identical to what dense Adam would make of it.
void OuterOptimizer::lazy_adam_step(const meta::RowSparseGradient& gradient) {
  const std::size_t i = gradient.parameter;
  const auto [beta1, beta2] = kAdamDefaults.betas();
  adam_update_rows(params_[i], exp_avg_[i], exp_avg_sq_[i], gradient.rows, gradient.values,
                   {meta_.outer_lr, beta1, beta2, kAdamDefaults.eps(), sparse_steps_});
}

// torch::optim::Adam::step with each parameter's update done by adam_update: the optimiser's
// per-parameter state (step, exp_avg, exp_avg_sq) is created, keyed and advanced as
// torch::optim::Adam does it, so its save() and load() (the checkpoints' "optimizer") are
// unchanged.
void OuterOptimizer::dense_adam_step() {
  auto& adam = static_cast<torch::optim::Adam&>(*dense_);
  for (auto& group : adam.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    // adam_update has neither (the constructor above never sets them): fail loudly rather than
    // step without them if that ever changes.
    if (options.weight_decay() != 0 || options.amsgrad())
      throw std::logic_error("the outer Adam step has no weight decay or AMSGrad");
    const auto [beta1, beta2] = options.betas();
    for (const Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = adam.state()[c10::guts::to_string(p.unsafeGetTensorImpl())];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*slot);
      state.step(state.step() + 1);
      adam_update(p, state.exp_avg(), state.exp_avg_sq(), p.grad(),
                  {options.lr(), beta1, beta2, options.eps(), state.step()});
    }
  }
}

void OuterOptimizer::lazy_sgd_step(const meta::RowSparseGradient& gradient) {
  torch::NoGradGuard no_grad;
  Tensor& table = params_[gradient.parameter];
  Tensor weights = table.index_select(0, gradient.rows);
  weights.add_(gradient.values, -meta_.outer_lr);
  table.index_copy_(0, gradient.rows, weights);
}

void OuterOptimizer::save(torch::serialize::OutputArchive& archive) const {
  if (dense_) {
    torch::serialize::OutputArchive dense;
    dense_->save(dense);
    archive.write("optimizer", dense);
  }
  torch::serialize::OutputArchive sparse;
  sparse.write("step", torch::tensor(sparse_steps_, torch::kInt64));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    sparse.write("exp_avg_" + std::to_string(i), exp_avg_[i].cpu());
    sparse.write("exp_avg_sq_" + std::to_string(i), exp_avg_sq_[i].cpu());
  }
  archive.write("row_sparse_optimizer", sparse);
}

void OuterOptimizer::load(torch::serialize::InputArchive& archive, const std::string& source) {
  if (dense_) {
    torch::serialize::InputArchive dense;
    if (archive.try_read("optimizer", dense)) dense_->load(dense);
  }
  const bool any_row_sparse =
      std::find(row_sparse_.begin(), row_sparse_.end(), true) != row_sparse_.end();
  torch::serialize::InputArchive sparse;
  if (!archive.try_read("row_sparse_optimizer", sparse)) {
    if (any_row_sparse)
      throw CheckpointError("'" + source +
                            "' has no row-sparse optimiser state for the embedding tables: it was "
                            "written by an older metalearn and cannot be resumed exactly");
    return;
  }
  Tensor steps;
  sparse.read("step", steps);
  sparse_steps_ = steps.item<std::int64_t>();
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    for (auto [name, state] : {std::make_pair("exp_avg_", &exp_avg_[i]),
                               std::make_pair("exp_avg_sq_", &exp_avg_sq_[i])}) {
      Tensor value;
      sparse.read(name + std::to_string(i), value);
      if (value.sizes() != state->sizes())
        throw CheckpointError("'" + source + "': optimiser state " + name + std::to_string(i) +
                              " has shape " + c10::str(value.sizes()) + ", the model expects " +
                              c10::str(state->sizes()));
      state->copy_(value);
    }
  }
}

}  // namespace ml::train
