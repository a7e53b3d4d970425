// The standard non-episodic few-shot baselines on a pretrained representation: a linear probe
// fitted on the support set, and nearest class mean. Neither adapts the network; both read the
// representation the model's head reads (FunctionalModelImpl::represent) and fit only a
// classifier on it, which is what "Baseline" in Chen et al., "A Closer Look at Few-shot
// Classification" (ICLR 2019) and SimpleShot (Wang et al., 2019) measure.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "tasks/task_set.hpp"

namespace ml::meta {

// Outputs [n_query, outputs] of a linear model fitted on the support representations:
//   binary      logistic regression (one logit column),
//   regression  ridge regression (one value column; closed form),
//   multiclass  multinomial logistic regression over `classes` columns,
// minimising the mean loss of models::task_loss + l2/2 * ||W||^2 (the bias is not penalised) on
// representations standardised with the support set's mean and standard deviation, with L-BFGS
// (the loss is convex, so the fit is the optimum up to tolerance). l2 > 0; eval chooses it on
// validation tasks from kLinearProbePenalties.
// support_rep [K, h] and query_rep [n, h] are float tensors on one device; support_target is
// as in models::Batch (0/1 or values as float, class indices as int64). No gradient leaves.
torch::Tensor linear_probe_outputs(const torch::Tensor& support_rep,
                                   const torch::Tensor& support_target,
                                   const torch::Tensor& query_rep, tasks::LabelKind kind,
                                   std::int64_t classes, double l2);

// The L2 penalties eval tries for the linear probe (a few examples in tens of dimensions need
// strong regularisation; which is best depends on the representation).
inline constexpr double kLinearProbePenalties[] = {0.01, 0.1, 1.0, 10.0};

// Logits [n_query, classes] = minus the squared Euclidean distance of each query representation
// to each class's mean support representation (a class absent from the support gets a mean of
// zeros at distance |z|^2; episodes always carry every class). Representations are L2-normalised
// first, as SimpleShot found best. Multiclass only: support_target holds int64 class indices.
torch::Tensor nearest_class_mean_outputs(const torch::Tensor& support_rep,
                                         const torch::Tensor& support_target,
                                         const torch::Tensor& query_rep, std::int64_t classes);

}  // namespace ml::meta
