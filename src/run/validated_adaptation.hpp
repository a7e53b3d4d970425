// The adaptation settings chosen on a run's validation tasks (RUN/adaptation.json): for each
// support size K, the inner-loop step count and learning rate whose adapted models scored best
// on the validation tasks' query sets. `metalearn train` writes it when training completes;
// `adapt` (and the demo) use it by default, so a user who never tunes adapts with validated
// settings rather than the config's guesses. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace ml::run {

// The bounds of an adaptation setting, shared by adapt's and eval's options and by the reader of
// this file: more steps than this is a typo, not a plan (a million steps take hours per task).
// The same bound as meta.inner_steps and meta.adapt_steps.
inline constexpr int kMaxAdaptSteps = config::kMaxSteps;
// The largest support size K a setting is chosen or evaluated at (adapt's and eval's --shots
// bound): task.support's own, far above any task, and K + Q still fits an int.
inline constexpr int kMaxShots = config::kMaxEpisodeExamples;

// Whether an inner learning rate can be applied by the float32 models: finite and > 0, and as a
// float neither infinite (torch refuses a scalar that overflows float) nor below the smallest
// normal float (it would round towards no step at all).
bool usable_inner_lr(double lr);
// What usable_inner_lr asks for, worded once for every message: "a number from 1.2e-38 to 3.4e+38".
std::string usable_inner_lr_range();

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
  // The run the choice was made for: its resolved config without the "run" section, as its
  // checkpoint holds it (validated_config_of). Null in files written before it was recorded.
  nlohmann::json config;
  std::string metric;  // the primary metric the choice maximised or minimised ("auc", "rmse", ...)
  int episodes = 0;    // episodes per validation task
  std::vector<int> steps_grid;
  std::vector<double> inner_lr_grid;
  std::vector<ValidatedSetting> settings;  // by K, ascending

  // The setting for support size `shots`: the one chosen at that K, else at the nearest K
  // (the smaller of two equally near); nullptr when there is none.
  const ValidatedSetting* for_shots(int shots) const;
};

// What ValidatedAdaptation::config records of a run's resolved config (a checkpoint's
// CheckpointMeta::config): all but the "run" section, which says where and how a command runs,
// not what was trained.
nlohmann::json validated_config_of(const nlohmann::json& run_config);

// Writes `adaptation` to `path` atomically (FileWriteError when it cannot).
void write_validated_adaptation(const std::string& path, const ValidatedAdaptation& adaptation);
// std::nullopt when `path` does not exist. CheckpointError, one line naming the file, the key
// (or line and column), the value and what was expected, when it exists but is not such a file:
// a folder, not JSON, a key missing, a value of the wrong type or out of range (shots 1 to
// kMaxShots, steps 0 to kMaxAdaptSteps, inner_lr usable_inner_lr or null, at least one setting,
// no K twice). Keys it does not know are left alone (a newer version may add some).
std::optional<ValidatedAdaptation> read_validated_adaptation(const std::string& path);
// CheckpointError when `adaptation` (read from `path`) was not chosen for the run whose resolved
// config is `run_config`: another method, or another config (naming the first differing key);
// a file without a recorded config is checked by its method alone.
void check_validated_adaptation(const std::string& path, const ValidatedAdaptation& adaptation,
                                const nlohmann::json& run_config);

}  // namespace ml::run
