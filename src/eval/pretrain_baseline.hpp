// The supervised pretraining baseline eval measures a run against (Chen et al. 2019, "A Closer
// Look at Few-shot Classification"; Tian et al. 2020, "Rethinking Few-Shot Image
// Classification: a Good Embedding Is All You Need"): the run's own config with
// meta.algorithm = "pretrain", trained into RUN/baselines/pretrain by the same trainer on the
// same episodes with the same budget, once; later evals reuse it. Shared by the purchase-log
// eval (eval/cold_start.hpp) and the text eval (eval/text_eval.hpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "runtime/work_share.hpp"

namespace ml::eval {

// `base` with meta.algorithm, run.dir and run.threads replaced (through JSON, so that the
// result is validated like any config).
config::Config with_algorithm(const config::Config& base, config::Algorithm algorithm,
                              const std::string& run_dir, int threads);

struct PretrainBaseline {
  std::string how;  // "reused" | "resumed" | "trained"
  // Its checkpoint files: best (when there is one), then latest unless both hold the same
  // iteration.
  std::vector<std::string> checkpoints;
};

// Reuses the pretrain baseline in `pretrain.run.dir`, resumes it there when it stopped early,
// or trains it there, with `pretrain` (the run's config through with_algorithm). The budget is
// meta.iterations, or the iterations the run's own latest checkpoint (under `run_dir`)
// reached when it stopped early (train --stop-after), so that both meet at the same point.
// CheckpointError when the baseline there was trained with another config than `pretrain`
// (apart from run.*) or has no checkpoint; InterruptedError naming the folder on a signal (the
// next eval resumes it); the trainer's errors. Under a launch (`share` with a group) rank 0
// does that while the other ranks wait, then they read the checkpoints it wrote:
// DistributedError on a rank that cannot find them (a host without the shared run folder).
PretrainBaseline ensure_pretrain_baseline(const std::filesystem::path& run_dir,
                                          const config::Config& pretrain,
                                          const runtime::WorkShare& share = {});

}  // namespace ml::eval
