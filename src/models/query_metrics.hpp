// One task's query metrics from a model's outputs, for a label kind: the single calculation behind
// eval's cells and adapt's before/after numbers, so the two always report the same values.
#pragma once

#include <torch/torch.h>

#include "metrics/metrics.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

// `outputs` [n, 1] logits or values ([n, classes] logits for multiclass), `target` [n] labels
// (class ids for multiclass), on any device. Binary: AUC (NaN on a one-class query), log loss,
// accuracy; regression: RMSE, MAE; multiclass: accuracy. All NaN for an empty query.
metrics::QueryMetrics query_metrics(const torch::Tensor& outputs, const torch::Tensor& target,
                                    tasks::LabelKind kind);

}  // namespace ml::models
