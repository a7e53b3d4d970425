// The run directory: every file name a run, its baselines and its adapted models live under, in
// one place, so train writes exactly where eval, adapt, predict and the report look.
//   RUN/config.json                     the resolved config
//   RUN/metrics.jsonl                   one JSON object per logged step and per validation
//   RUN/train.log                       the log lines of the run
//   RUN/checkpoints/latest.mlckpt       the last saved state (for --resume)
//   RUN/checkpoints/best.mlckpt         the best validation by train.selection_metric
//   RUN/adaptation.json                 adaptation steps and inner lr chosen on validation tasks
//   RUN/diverged.json                   present when training diverged (run/divergence.hpp)
//   RUN/adapted/TASK.mlckpt             models adapted to one task (metalearn adapt)
//   RUN/baselines/pretrain/             the pretrain baseline eval trains, itself a run directory
// Torch-free, so the CLI and the report can include it.
#pragma once

#include <filesystem>
#include <string>

namespace ml::run {

inline constexpr const char* kCheckpointDirName = "checkpoints";
inline constexpr const char* kBestCheckpointName = "best.mlckpt";
inline constexpr const char* kLatestCheckpointName = "latest.mlckpt";
inline constexpr const char* kAdaptedDirName = "adapted";

struct RunLayout {
  std::filesystem::path dir;

  explicit RunLayout(std::filesystem::path run_dir) : dir(std::move(run_dir)) {}

  std::filesystem::path config() const { return dir / "config.json"; }
  std::filesystem::path metrics() const { return dir / "metrics.jsonl"; }
  std::filesystem::path train_log() const { return dir / "train.log"; }
  std::filesystem::path checkpoints() const { return dir / kCheckpointDirName; }
  std::filesystem::path best_checkpoint() const { return checkpoints() / kBestCheckpointName; }
  std::filesystem::path latest_checkpoint() const { return checkpoints() / kLatestCheckpointName; }
  std::filesystem::path adapted() const { return dir / kAdaptedDirName; }
  std::filesystem::path validated_adaptation() const { return dir / "adaptation.json"; }
  std::filesystem::path divergence() const { return dir / "diverged.json"; }
  std::filesystem::path pretrain_baseline() const { return dir / "baselines" / "pretrain"; }
};

// The run directory a checkpoint argument belongs to: a directory is itself; a file in a run's
// checkpoints/ or adapted/ folder gives the folder above it; any other file its own folder
// ("." for a bare file name).
std::filesystem::path run_dir_of(const std::string& checkpoint_or_run_dir);

}  // namespace ml::run
