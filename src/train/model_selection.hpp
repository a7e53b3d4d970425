// How a run chooses checkpoints/best.mlckpt: train.selection_metric resolved for the label kind
// ("auto" is the task's own metric: AUC for binary labels, accuracy for multiclass, RMSE for
// regression), which direction of it is better, and the mean validation scores it is read from.
// Log loss alone is a poor judge of a ranking model: with a balanced support and a rarely
// positive query it can prefer an early checkpoint whose AUC is clearly lower (issue 16, §5).
// Torch-free, so the choice can be tested on planted numbers.
#pragma once

#include <cmath>
#include <string>

#include "config/choices.hpp"
#include "metrics/metrics.hpp"
#include "tasks/task_set.hpp"

namespace ml::train {

// Mean scores over a validation pass's episodes, each after adaptation on its support: `loss`
// is the query loss the model trains on (log loss, cross-entropy or MSE), `metrics` the query
// metrics of models::query_metrics. NaN where nothing was measured (no validation episode, a
// metric the label kind lacks, or AUC when every query held one class).
struct ValidationScores {
  double loss = NAN;
  metrics::QueryMetrics metrics;
};

// Averages episodes' scores, each metric over the episodes where it is not NaN (a one-class
// query has no AUC but still has a loss).
class ValidationMean {
 public:
  void add(double loss, const metrics::QueryMetrics& m);
  ValidationScores mean() const;

 private:
  struct Sum {
    double total = 0;
    int count = 0;
    void add(double v);
    double mean() const { return count ? total / count : NAN; }
  };
  Sum loss_, auc_, log_loss_, accuracy_, rmse_, mae_;
};

// `metric` with "auto" replaced by the label kind's own metric; the others unchanged (the config
// check already refused a metric the label kind does not have).
config::SelectionMetric resolve_selection_metric(config::SelectionMetric metric,
                                                 tasks::LabelKind kind);

// AUC and accuracy: larger is better; loss, RMSE and MAE: smaller.
bool higher_is_better(config::SelectionMetric metric);

// How logs name it: "AUC", "accuracy", "RMSE", "MAE", "loss".
std::string metric_label(config::SelectionMetric metric);

// The value of a resolved `metric` among `scores` (NaN for "auto", which must be resolved first).
double selection_value(const ValidationScores& scores, config::SelectionMetric metric);

// Whether `value` replaces `best` as the best checkpoint's score under a resolved `metric`: a NaN
// value never does, any other value does when `best` is NaN (nothing chosen yet), else only a
// strict improvement (a tie keeps the earlier, cheaper checkpoint).
bool improves(config::SelectionMetric metric, double value, double best);

}  // namespace ml::train
