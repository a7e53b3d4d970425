// `metalearn train` as a library call: meta-trains the configured algorithm on the training
// tasks, validates on the validation tasks, and writes a run directory (run/run_layout.hpp): the
// resolved config, metrics.jsonl, train.log (this run's log lines only) and the latest and best
// checkpoints (run/checkpoint.hpp).
// Same seed, data and config give the same weights on CPU; --resume continues from the latest
// checkpoint and ends with the same weights as an uninterrupted run.
#pragma once

#include <string>

#include "config/config.hpp"

namespace ml::train {

struct TrainOptions {
  bool resume = false;
  // Stop after this many meta-iterations in this call (0 = run to meta.iterations); used to
  // simulate an interruption in tests.
  int stop_after = 0;
};

struct TrainSummary {
  std::string run_dir;
  std::string algorithm;
  int iterations = 0;          // completed meta-iterations
  double last_loss = 0;        // mean query loss over the last logged window
  double best_validation = 0;  // lowest validation query loss (NaN without validation tasks)
  int best_iteration = -1;
  double seconds = 0;
};

TrainSummary run_training(const config::Config& config, const TrainOptions& options);

}  // namespace ml::train
