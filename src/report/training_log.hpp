// A run's training history as the report draws it, read from RUN/metrics.jsonl (written by
// train/trainer.cpp; run/run_layout.hpp): training lines {"iteration", "loss", "seconds"} and
// validation lines {"iteration", "validation": {"loss", and the label kind's metrics: "auc" and
// "accuracy", "accuracy", or "rmse" and "mae"}, "selection": {"metric", "best"}} ("best": this
// validation became best.mlckpt under train.selection_metric). Lines that are not such objects (a
// line cut off by a crash mid-write, something appended by hand) are counted and skipped: a report
// should still show what the file does say.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "eval/cold_start.hpp"

namespace ml::report {

struct TrainingPoint {
  int iteration = 0;
  double value = NAN;
};

struct TrainingLog {
  std::string method;  // whose run it is ("maml", "pretrain"), for the legend and colour
  std::string path;    // the metrics.jsonl it came from
  std::vector<TrainingPoint> loss;             // mean training loss of each logged window
  std::vector<TrainingPoint> validation_loss;  // query loss after adaptation on validation tasks
  std::vector<TrainingPoint> validation_auc;   // binary labels only
  int skipped_lines = 0;

  bool empty() const { return loss.empty() && validation_loss.empty() && validation_auc.empty(); }
};

// Reads `path`; a missing or unreadable file gives an empty log (a run may predate metrics.jsonl).
// A resumed run appends to the file, so a later line for an iteration replaces an earlier one.
TrainingLog read_training_log(const std::string& path, const std::string& method);

// The training logs a cold-start result's report shows: every evaluated run's (ColdStartResult::
// runs, each under its method name), then the pretrain baseline's when the evaluation loaded it
// from a run directory of its own (RUN/baselines/pretrain); logs without a single point are left
// out.
std::vector<TrainingLog> read_training_logs(const eval::ColdStartResult& result);

}  // namespace ml::report
