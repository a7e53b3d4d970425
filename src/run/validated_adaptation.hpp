// The adaptation settings chosen on a run's validation tasks (RUN/adaptation.json): for each
// support size K, the inner-loop step count and learning rate whose adapted models scored best
// on the validation tasks' query sets. `metalearn train` writes it when training completes;
// `adapt` (and the demo) use it by default, so a user who never tunes adapts with validated
// settings rather than the config's guesses. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ml::run {

struct ValidatedSetting {
  int shots = 0;          // K the choice was made at (per class for multiclass)
  int steps = 0;          // inner-loop steps
  double inner_lr = 0;    // NaN: the method learns or needs no rate (metasgd, protonet)
  double value = 0;       // the chosen setting's mean of `metric` over the validation tasks
  double half_width = 0;  // its 95% CI half width (NaN with one task)
  int tasks = 0;          // validation tasks that gave episodes at this K
};

struct ValidatedAdaptation {
  std::string method;  // the run's algorithm
  std::string metric;  // the primary metric the choice maximised or minimised ("auc", "rmse", ...)
  int episodes = 0;    // episodes per validation task
  std::vector<int> steps_grid;
  std::vector<double> inner_lr_grid;
  std::vector<ValidatedSetting> settings;  // by K, ascending

  // The setting for support size `shots`: the one chosen at that K, else at the nearest K
  // (the smaller of two equally near); nullptr when there is none.
  const ValidatedSetting* for_shots(int shots) const;
};

// Writes `adaptation` to `path` atomically (FileWriteError when it cannot).
void write_validated_adaptation(const std::string& path, const ValidatedAdaptation& adaptation);
// std::nullopt when `path` does not exist; CheckpointError naming the file and the key when it
// exists but cannot be read as one.
std::optional<ValidatedAdaptation> read_validated_adaptation(const std::string& path);

}  // namespace ml::run
