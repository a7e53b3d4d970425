// How far a meta-training run got, as its checkpoints record it (CheckpointMeta::progress of a
// "meta" checkpoint): read by --resume, by eval (the pretrain baseline's budget) and by reports.
// It holds everything a resumed run needs to continue metrics.jsonl exactly as the
// uninterrupted run writes it: the open window of training losses not yet logged, the last
// logged loss and the training time so far. Torch-free.
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace ml::run {

struct TrainingProgress {
  int iteration = 0;  // completed meta-iterations
  // The algorithm the run meta-trains with: meta.algorithm, or "fomaml" where maml fell back
  // to first order (meta.first_order_fallback), which a resumed run keeps.
  std::string algorithm;
  // The metric that chose best.mlckpt (train.selection_metric resolved: "auc", "loss", ...);
  // "" when unknown. Checkpoints written before the metric was configurable chose by "loss".
  std::string selection_metric;
  int best_iteration = -1;       // where best_validation was reached; -1: none yet
  double best_validation = NAN;  // that metric's value there; NaN: none yet (or no validation)
  // Training losses of the meta-iterations since the last metrics.jsonl line: their sum and
  // count (the next line logs sum / count).
  double window_loss_sum = 0;
  int window_iterations = 0;
  double last_loss = NAN;  // the loss of the last logged line; NaN before the first
  double seconds = 0;      // wall-clock seconds of training so far, over every call that resumed it
  // How many chunks each meta-batch was cut into (MetaLearner::set_task_chunks), so that a
  // resumed run computes its meta-gradients as the run did; 0: not recorded (older runs).
  int task_chunks = 0;
  // The validation of `iteration` was interrupted (Ctrl-C) before it finished: a resumed run
  // does it first, so metrics.jsonl and best.mlckpt come out as the uninterrupted run's.
  // Written only when true.
  bool validation_pending = false;
};

// Every field by its name; a NaN is written as null.
void to_json(nlohmann::json& j, const TrainingProgress& p);
// Tolerant, so every checkpoint written so far still reads: a missing or mistyped field keeps
// its default (null reads as NaN), keys it does not know are ignored, and the older
// "best_validation_loss" reads as best_validation chosen by "loss".
void from_json(const nlohmann::json& j, TrainingProgress& p);

}  // namespace ml::run
