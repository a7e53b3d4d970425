// Training or reusing the pretrain baseline: see pretrain_baseline.hpp.
#include "eval/pretrain_baseline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "run/checkpoint.hpp"
#include "run/run_layout.hpp"
#include "run/training_progress.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/json_diff.hpp"

namespace ml::eval {

namespace fs = std::filesystem;

namespace {

config::Json without_run_section(config::Json j) {
  j.erase("run");
  return j;
}

}  // namespace

config::Config with_algorithm(const config::Config& base, config::Algorithm algorithm,
                              const std::string& run_dir, int threads) {
  config::Json j;
  to_json(j, base);
  j["meta"]["algorithm"] = enum_name(algorithm);
  j["run"]["dir"] = run_dir;
  j["run"]["threads"] = threads;
  return config::config_from_json(j);
}

namespace {

// ensure_pretrain_baseline in this process; a rank other than 0 (`may_train` false) only reads
// what rank 0 trained.
PretrainBaseline ensure_here(const fs::path& run_dir, const config::Config& pc, bool may_train) {
  PretrainBaseline result;
  const run::RunLayout baseline(pc.run.dir);
  const fs::path& dir = baseline.dir;
  const fs::path latest = baseline.latest_checkpoint();
  int budget = pc.meta.iterations;
  const fs::path run_latest = run::RunLayout(run_dir).latest_checkpoint();
  if (fs::exists(run_latest)) {
    const nlohmann::json progress = run::read_checkpoint_meta(run_latest.string()).progress;
    budget = std::min(budget, progress.contains("iteration")
                                  ? progress.get<run::TrainingProgress>().iteration
                                  : pc.meta.iterations);
  }
  if (budget < pc.meta.iterations)
    spdlog::warn(
        "the run stopped at meta-iteration {} of {}; the pretrain baseline gets the same {}",
        budget, pc.meta.iterations, budget);
  config::Json expected;
  to_json(expected, pc);
  train::TrainOptions train_options;
  bool train_now = true;
  int done = 0;
  if (fs::exists(latest)) {
    run::CheckpointMeta meta = run::read_checkpoint_meta(latest.string());
    // Re-resolved like the run's own config (config_from_saved), so that a baseline written
    // with relative data paths by an earlier version still matches.
    to_json(meta.config, config::config_from_saved(meta.config));
    if (without_run_section(meta.config) != without_run_section(expected))
      throw CheckpointError(
          "'" + latest.string() + "' was trained with another config than the run's (at " +
          first_json_difference(without_run_section(meta.config), without_run_section(expected), "",
                                "there", "for this run") +
          "); delete '" + dir.string() + "' to retrain the pretrain baseline");
    done = meta.progress.get<run::TrainingProgress>().iteration;
    if (done >= budget) {
      spdlog::info("reusing the pretrain baseline in {} ({} iterations)", dir.string(), done);
      if (done > budget)
        spdlog::warn("the pretrain baseline in {} had {} iterations, the run {}", dir.string(),
                     done, budget);
      result.how = "reused";
      train_now = false;
    } else {
      spdlog::info("resuming the pretrain baseline in {} at iteration {} of {}", dir.string(), done,
                   budget);
      result.how = "resumed";
      train_options.resume = true;
    }
  } else {
    spdlog::info(
        "training the pretrain baseline in-process into {} (same tasks, episodes and budget: {} "
        "iterations of {} tasks); later evals reuse it, --no-pretrain skips it",
        dir.string(), budget, pc.meta.meta_batch);
    result.how = "trained";
  }
  if (budget < pc.meta.iterations) train_options.stop_after = budget - done;
  if (train_now && !may_train)
    throw DistributedError(
        "no complete pretrain baseline in '" + dir.string() +
        "' on this host after rank 0 trained it: under torchrun every rank reads the run "
        "folder, so hosts need it shared (or copy it there, or leave it out with --no-pretrain)");
  try {
    if (train_now) train::run_training(pc, train_options);
  } catch (const InterruptedError& e) {
    // The trainer's "--resume" advice is for `train`: eval resumes the baseline itself.
    const int signal = static_cast<int>(e.code()) - 128;
    throw InterruptedError(signal, "interrupted (" + signal_name(signal) +
                                       ") while training the pretrain baseline in '" +
                                       dir.string() +
                                       "' (the iterations it finished are saved; the next eval "
                                       "resumes it)");
  }
  std::vector<int> iterations;
  for (const fs::path& path : {baseline.best_checkpoint(), latest}) {
    if (!fs::exists(path)) continue;
    const int iteration = run::read_checkpoint_meta(path.string()).progress.value("iteration", -1);
    if (std::find(iterations.begin(), iterations.end(), iteration) != iterations.end()) continue;
    iterations.push_back(iteration);
    result.checkpoints.push_back(path.string());
  }
  if (result.checkpoints.empty())
    throw CheckpointError("the pretrain baseline in '" + dir.string() + "' has no checkpoint");
  return result;
}

}  // namespace

PretrainBaseline ensure_pretrain_baseline(const fs::path& run_dir, const config::Config& pc,
                                          const runtime::WorkShare& share) {
  PretrainBaseline result;
  // Rank 0 trains it while the others wait; they then read what it wrote.
  share.on_rank0("training the pretrain baseline in '" + pc.run.dir + "'",
                 [&] { result = ensure_here(run_dir, pc, /*may_train=*/true); });
  if (!share.leads()) result = ensure_here(run_dir, pc, /*may_train=*/false);
  return result;
}

}  // namespace ml::eval
