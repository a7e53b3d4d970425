// `metalearn train` as a library call: meta-trains the configured algorithm on the training
// tasks, validates on the validation tasks, and writes a run directory (run/run_layout.hpp): the
// resolved config, metrics.jsonl, train.log (this run's log lines only) and the latest and best
// checkpoints (run/checkpoint.hpp). best.mlckpt is chosen by train.selection_metric
// (train/model_selection.hpp).
// Same seed, data and config give the same weights on CPU when each meta-batch is cut into the
// same number of chunks (MetaLearner::set_task_chunks; run.threads decides it, and with the
// usable cores a start-up measurement: the log's "meta-steps:" line); other chunk counts differ
// in float rounding only. --resume keeps the recorded chunks, continues from the latest
// checkpoint and ends with the same weights and the same metrics.jsonl as an uninterrupted run
// (but for the wall-clock "seconds" of its lines), after --stop-after or after a crash: lines
// past the checkpoint are dropped and rewritten, and the checkpoint carries the losses of the
// window not yet logged. Resuming a finished run changes nothing and reports it.
#pragma once

#include <cmath>
#include <string>

#include "config/config.hpp"

namespace ml::runtime {
class ProcessGroup;
}  // namespace ml::runtime

namespace ml::train {

struct TrainOptions {
  bool resume = false;
  // Stop after this many meta-iterations in this call (0 = run to meta.iterations); used to
  // simulate an interruption in tests.
  int stop_after = 0;
  // Data-parallel training (train/data_parallel.hpp) with this rank's group, or nullptr for
  // one process. Every rank trains on its share of each meta-batch and applies the same outer
  // step; rank 0 alone writes the run folder. The group must outlive the call.
  runtime::ProcessGroup* group = nullptr;
};

struct TrainSummary {
  std::string run_dir;
  std::string algorithm;
  int iterations = 0;             // completed meta-iterations
  bool already_finished = false;  // --resume of a run that had nothing left to train
  double last_loss = NAN;         // mean training loss of the last logged window
  // What chose best.mlckpt: train.selection_metric resolved for the label kind (never kAuto).
  config::SelectionMetric selection_metric = config::SelectionMetric::kLoss;
  double best_validation = NAN;  // its value there (NaN without validation tasks)
  int best_iteration = -1;
  double seconds = 0;  // this call's wall-clock time
};

TrainSummary run_training(const config::Config& config, const TrainOptions& options);

}  // namespace ml::train
