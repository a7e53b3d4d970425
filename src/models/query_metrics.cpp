// Query metrics of model outputs: see query_metrics.hpp.
#include "models/query_metrics.hpp"

#include "models/batch.hpp"

namespace ml::models {

metrics::QueryMetrics query_metrics(const torch::Tensor& outputs, const torch::Tensor& target,
                                    tasks::LabelKind kind) {
  metrics::QueryMetrics m;
  if (target.numel() == 0) return m;
  if (kind == tasks::LabelKind::kMulticlass) {
    torch::Tensor labels = target.to(torch::kCPU, torch::kInt64).contiguous();
    std::vector<int> y(static_cast<std::size_t>(labels.numel()));
    for (std::size_t i = 0; i < y.size(); ++i)
      y[i] = static_cast<int>(labels.data_ptr<std::int64_t>()[i]);
    m.accuracy = metrics::multiclass_accuracy(to_floats(outputs),
                                              static_cast<std::size_t>(outputs.size(1)), y);
    return m;
  }
  const std::vector<float> out = to_floats(outputs.select(1, 0)), y = to_floats(target);
  if (kind == tasks::LabelKind::kRegression) {
    m.rmse = metrics::rmse(out, y);
    m.mae = metrics::mae(out, y);
  } else {
    m.auc = metrics::roc_auc(out, y);
    m.log_loss = metrics::log_loss_from_logits(out, y);
    m.accuracy = metrics::binary_accuracy_from_logits(out, y);
  }
  return m;
}

}  // namespace ml::models
