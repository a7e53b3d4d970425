// Checkpoint selection by a validation metric: see model_selection.hpp.
#include "train/model_selection.hpp"

namespace ml::train {

using config::SelectionMetric;

void ValidationMean::Sum::add(double v) {
  if (std::isnan(v)) return;
  total += v;
  ++count;
}

void ValidationMean::add(double loss, const metrics::QueryMetrics& m) {
  loss_.add(loss);
  auc_.add(m.auc);
  log_loss_.add(m.log_loss);
  accuracy_.add(m.accuracy);
  rmse_.add(m.rmse);
  mae_.add(m.mae);
}

ValidationScores ValidationMean::mean() const {
  ValidationScores s;
  s.loss = loss_.mean();
  s.metrics.auc = auc_.mean();
  s.metrics.log_loss = log_loss_.mean();
  s.metrics.accuracy = accuracy_.mean();
  s.metrics.rmse = rmse_.mean();
  s.metrics.mae = mae_.mean();
  return s;
}

SelectionMetric resolve_selection_metric(SelectionMetric metric, tasks::LabelKind kind) {
  if (metric != SelectionMetric::kAuto) return metric;
  switch (kind) {
    case tasks::LabelKind::kBinary:
      return SelectionMetric::kAuc;
    case tasks::LabelKind::kMulticlass:
      return SelectionMetric::kAccuracy;
    case tasks::LabelKind::kRegression:
      return SelectionMetric::kRmse;
  }
  return SelectionMetric::kLoss;
}

bool higher_is_better(SelectionMetric metric) {
  return metric == SelectionMetric::kAuc || metric == SelectionMetric::kAccuracy;
}

std::string metric_label(SelectionMetric metric) {
  switch (metric) {
    case SelectionMetric::kAuc:
      return "AUC";
    case SelectionMetric::kRmse:
      return "RMSE";
    case SelectionMetric::kMae:
      return "MAE";
    case SelectionMetric::kAuto:
    case SelectionMetric::kLoss:
    case SelectionMetric::kAccuracy:
      break;
  }
  return enum_name(metric);
}

double selection_value(const ValidationScores& scores, SelectionMetric metric) {
  switch (metric) {
    case SelectionMetric::kLoss:
      return scores.loss;
    case SelectionMetric::kAuc:
      return scores.metrics.auc;
    case SelectionMetric::kAccuracy:
      return scores.metrics.accuracy;
    case SelectionMetric::kRmse:
      return scores.metrics.rmse;
    case SelectionMetric::kMae:
      return scores.metrics.mae;
    case SelectionMetric::kAuto:
      break;
  }
  return NAN;
}

bool improves(SelectionMetric metric, double value, double best) {
  if (std::isnan(value)) return false;
  if (std::isnan(best)) return true;
  return higher_is_better(metric) ? value > best : value < best;
}

}  // namespace ml::train
