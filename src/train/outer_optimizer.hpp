// The outer (meta) optimiser of a training run. Dense meta-parameters use torch::optim::Adam or
// SGD; embedding tables, whose meta-gradient arrives row-sparse (meta/row_sparse_gradient.hpp),
// use the "lazy" row-sparse counterpart: only the rows a step's gradient names are read or
// written, so a step costs the touched rows, not the whole tables.
//
// Lazy Adam (TensorFlow's LazyAdamOptimizer): a touched row updates its first and second moments
// and its weights exactly as dense Adam would; untouched rows keep their weights and moments
// (they are not decayed), and the bias correction uses the optimiser's global step count, so a
// row touched for the first time at step t is corrected with t. Lazy SGD updates only the
// touched rows, which equals dense SGD (an untouched row's gradient is zero).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "meta/row_sparse_gradient.hpp"

namespace ml::train {

// Scales the dense parameters' .grad() in place and replaces each row-sparse gradient's values
// by a scaled copy, so that their one joint L2 norm is at most `max_norm` (the same formula as
// torch::nn::utils::clip_grad_norm_, over both kinds at once). Returns the norm before clipping.
double clip_gradients(const std::vector<torch::Tensor>& dense,
                      std::vector<meta::RowSparseGradient>& sparse, double max_norm);

class OuterOptimizer {
 public:
  // `row_sparse[i]` marks params[i] as updated only from step()'s row-sparse gradients.
  // `learning_rates[i]`, when given, is params[i]'s own (a trainable backbone's,
  // model.backbone.lr); the others use meta.outer_lr. Dense parameters of another rate form a
  // torch optimiser parameter group of their own, after the one of meta.outer_lr.
  OuterOptimizer(const config::MetaConfig& meta, std::vector<torch::Tensor> params,
                 const std::vector<bool>& row_sparse,
                 const std::vector<double>& learning_rates = {});

  void zero_grad();
  // One update: the dense parameters from their .grad(), the row-sparse ones from `sparse`,
  // after clipping both together to meta.grad_clip (when set). Returns the gradients' joint L2
  // norm before clipping (0 without gradients); when it is not finite (a NaN or Inf anywhere),
  // nothing is updated, neither weights nor optimiser state, and the caller stops the run.
  double step(std::vector<meta::RowSparseGradient> sparse);

  // Writes/reads the state under "optimizer" (the dense torch optimiser, as checkpoints always
  // held it) and "row_sparse_optimizer" in a checkpoint's archive.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive, const std::string& source);

 private:
  void dense_adam_step();
  void lazy_adam_step(const meta::RowSparseGradient& gradient);
  void lazy_sgd_step(const meta::RowSparseGradient& gradient);

  config::MetaConfig meta_;
  std::vector<torch::Tensor> params_;
  std::vector<bool> row_sparse_;
  std::vector<torch::Tensor> dense_params_;
  std::unique_ptr<torch::optim::Optimizer> dense_;
  // Lazy Adam's state, per parameter index (undefined for dense parameters).
  std::int64_t sparse_steps_ = 0;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace ml::train
