// Meta-training runs: see trainer.hpp.
#include "train/trainer.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>

#include "meta/meta_learner.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/run_data.hpp"
#include "runtime/device.hpp"
#include "tasks/episode_sampler.hpp"
#include "train/checkpoint.hpp"
#include "train/learner_state.hpp"
#include "train/outer_optimizer.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/logging.hpp"
#include "util/progress.hpp"
#include "util/rng.hpp"
#include "util/version.hpp"

namespace ml::train {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMetaBatchPurpose = 0x6d65746162617463ULL;  // "metabatc"
// Validation episodes use indices far from the training ones, so the two never coincide.
constexpr std::uint64_t kValidationEpisodeBase = 1ULL << 40;

// The tasks of meta-iteration `iteration`: a seeded draw without replacement (with
// replacement only when there are fewer training tasks than the meta-batch).
std::vector<const tasks::Task*> meta_batch_tasks(const std::vector<const tasks::Task*>& pool,
                                                 int meta_batch, std::uint64_t seed,
                                                 std::uint64_t iteration) {
  Rng rng(derive_seed(seed, kMetaBatchPurpose, iteration));
  std::vector<const tasks::Task*> chosen;
  if (static_cast<std::size_t>(meta_batch) >= pool.size() * 2) {
    for (int i = 0; i < meta_batch; ++i) chosen.push_back(pool[uniform_index(rng, pool.size())]);
    return chosen;
  }
  std::vector<const tasks::Task*> order = pool;
  for (int i = 0; i < meta_batch; ++i) {
    std::size_t j = static_cast<std::size_t>(i) % order.size();
    if (j == 0 && i > 0) shuffle(order, rng);
    std::size_t k = j + uniform_index(rng, order.size() - j);
    std::swap(order[j], order[k]);
    chosen.push_back(order[j]);
  }
  return chosen;
}

struct Validation {
  double loss = NAN;
  double auc = NAN;
};

Validation validate(const meta::MetaLearner& learner, const pipeline::RunData& data,
                    const tasks::EpisodeSampler& sampler, const config::Config& config,
                    const torch::Device& device) {
  auto tasks = data.tasks.with_role(tasks::TaskRole::kValidation);
  if (tasks.empty()) return {};
  const auto kind = data.tasks.kind;
  double loss_sum = 0, auc_sum = 0;
  int losses = 0, aucs = 0;
  for (const tasks::Task* task : tasks) {
    if (!sampler.check(*task).empty()) continue;
    for (int e = 0; e < config.train.validation_episodes; ++e) {
      auto episode = sampler.sample(*task, kValidationEpisodeBase + static_cast<std::uint64_t>(e));
      auto batch = meta::make_task_batch(data, episode, device);
      torch::Tensor out =
          learner.adapted_outputs(batch.support, batch.query, config.meta.adapt_steps);
      loss_sum += models::task_loss(out, batch.query.target, kind).item<double>();
      ++losses;
      if (kind == tasks::LabelKind::kBinary) {
        double auc = metrics::roc_auc(models::to_floats(out.squeeze(1)),
                                      models::to_floats(batch.query.target));
        if (!std::isnan(auc)) {
          auc_sum += auc;
          ++aucs;
        }
      }
    }
  }
  Validation v;
  if (losses) v.loss = loss_sum / losses;
  if (aucs) v.auc = auc_sum / aucs;
  return v;
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

}  // namespace

TrainSummary run_training(const config::Config& config, const TrainOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  runtime::configure_compute(config.run.threads);
  const runtime::DeviceChoice choice = runtime::resolve_device(config.run.device);
  const torch::Device device =
      choice.cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(choice.index))
                  : torch::Device(torch::kCPU);

  const fs::path run_dir = config.run.dir;
  const fs::path checkpoint_dir = run_dir / kCheckpointDirName;
  const fs::path latest_path = checkpoint_dir / kLatestCheckpointName;
  const fs::path best_path = checkpoint_dir / kBestCheckpointName;
  nlohmann::json resolved;
  to_json(resolved, config);
  if (options.resume) {
    if (!fs::exists(latest_path))
      throw CheckpointError("--resume: no checkpoint at '" + latest_path.string() +
                            "' (run.dir = '" + run_dir.string() + "')");
  } else if (fs::exists(latest_path)) {
    throw ConfigError("run.dir = \"" + run_dir.string() +
                      "\": already holds a training run; continue it with --resume, or choose "
                      "another run.dir (--set run.dir=...)");
  }
  fs::create_directories(checkpoint_dir);
  add_log_file((run_dir / "train.log").string());

  Checkpoint resume_from;
  if (options.resume) {
    resume_from = load_checkpoint(latest_path.string());
    // Re-resolved, so that spellings this build writes differently (an alias such as a "tab"
    // delimiter) do not count as changes.
    nlohmann::json saved;
    to_json(saved, config::config_from_json(resume_from.meta.config));
    nlohmann::json now = resolved;
    // The run directory, device and threads may differ on resume; everything else may not.
    for (auto* j : {&saved, &now}) (*j)["run"].erase("device"), (*j)["run"].erase("threads");
    if (saved != now)
      throw ConfigError("--resume: the config differs from the one '" + latest_path.string() +
                        "' was trained with (diff: " + nlohmann::json::diff(saved, now).dump() +
                        ")");
  }
  write_file_atomically((run_dir / "config.json").string(),
                        [&](std::ostream& out) { out << resolved.dump(2) << "\n"; });

  spdlog::info("preparing data from {} file(s)", config.data.files.size());
  auto data =
      pipeline::prepare_run_data(config, options.resume ? &resume_from.meta.features : nullptr);
  const auto train_tasks = data->tasks.with_role(tasks::TaskRole::kTrain);
  if (train_tasks.empty())
    throw DataError(
        "no training task qualifies for task.support = " + std::to_string(config.task.support) +
        " + task.query = " + std::to_string(config.task.query) +
        " (see metalearn inspect --tasks for each task's size)");
  spdlog::info("{} training tasks, {} validation, {} new; {} dense features; algorithm {} on {}",
               train_tasks.size(), data->tasks.with_role(tasks::TaskRole::kValidation).size(),
               data->tasks.with_role(tasks::TaskRole::kNew).size(), data->features.dense_dim(),
               enum_name(config.meta.algorithm), choice.name());

  auto learner = build_learner(config, data->features, device);
  OuterOptimizer optimizer(config.meta, learner->meta_parameters(),
                           learner->row_sparse_parameters());
  int start = 0;
  double best_loss = INFINITY;
  int best_iteration = -1;
  if (options.resume) {
    resume_from.read_state(
        [&](torch::serialize::InputArchive& archive) {
          read_learner(archive, *learner, latest_path.string());
          optimizer.load(archive, latest_path.string());
        },
        device);
    start = resume_from.meta.progress.value("iteration", 0);
    best_iteration = resume_from.meta.progress.value("best_iteration", -1);
    if (resume_from.meta.progress.contains("best_validation_loss") &&
        resume_from.meta.progress["best_validation_loss"].is_number())
      best_loss = resume_from.meta.progress["best_validation_loss"].get<double>();
    spdlog::info("resuming at meta-iteration {}", start);
  }

  std::ofstream metrics(run_dir / "metrics.jsonl",
                        options.resume ? std::ios::app : std::ios::trunc);
  auto save = [&](const fs::path& path, int iteration) {
    CheckpointMeta meta;
    meta.tool_version = kToolVersion;
    meta.kind = kCheckpointKindMeta;
    meta.config = resolved;
    to_json(meta.features, data->features);
    meta.progress = {{"iteration", iteration},
                     {"algorithm", enum_name(config.meta.algorithm)},
                     {"best_iteration", best_iteration},
                     {"best_validation_loss", number_or_null(best_loss)}};
    save_checkpoint(path.string(), meta, [&](torch::serialize::OutputArchive& archive) {
      write_learner(archive, *learner);
      optimizer.save(archive);
    });
  };

  const tasks::EpisodeSampler sampler(data->tasks.kind, tasks::episode_shape(config.task),
                                      config.seed);
  const int total = learner->trains() ? config.meta.iterations : 0;
  const int stop = options.stop_after > 0 ? std::min(total, start + options.stop_after) : total;
  TrainSummary summary;
  summary.run_dir = run_dir.string();
  summary.algorithm = enum_name(config.meta.algorithm);
  Progress progress("meta-training " + summary.algorithm, "iterations", total);
  double window_loss = 0;
  int window = 0;
  auto run_validation = [&](int iteration) {
    Validation v = validate(*learner, *data, sampler, config, device);
    metrics << nlohmann::json{{"iteration", iteration},
                              {"validation",
                               {{"loss", number_or_null(v.loss)}, {"auc", number_or_null(v.auc)}}}}
                   .dump()
            << "\n";
    metrics.flush();
    if (std::isfinite(v.loss)) {
      if (std::isfinite(v.auc))
        spdlog::info("iteration {}: validation loss {:.4f}, AUC {:.4f}", iteration, v.loss, v.auc);
      else
        spdlog::info("iteration {}: validation loss {:.4f}", iteration, v.loss);
      if (v.loss < best_loss) {
        best_loss = v.loss;
        best_iteration = iteration;
        save(best_path, iteration);
      }
    }
  };

  // Episodes are a pure function of the iteration, so the next meta-batch is sampled and
  // encoded on a background thread while this one trains, and the trainer never waits on data.
  auto prepare = [&](int it) {
    auto chosen = meta_batch_tasks(train_tasks, config.meta.meta_batch, config.seed,
                                   static_cast<std::uint64_t>(it));
    std::vector<meta::TaskBatch> batches;
    for (std::size_t j = 0; j < chosen.size(); ++j) {
      auto episode = sampler.sample(*chosen[j], static_cast<std::uint64_t>(it) * 1000003ULL + j);
      batches.push_back(meta::make_task_batch(*data, episode, device));
    }
    return batches;
  };
  std::future<std::vector<meta::TaskBatch>> next;
  if (start < stop) next = std::async(std::launch::async, prepare, start);
  for (int it = start; it < stop; ++it) {
    std::vector<meta::TaskBatch> batches = next.get();
    if (it + 1 < stop) next = std::async(std::launch::async, prepare, it + 1);
    optimizer.zero_grad();
    double loss = learner->accumulate_meta_gradient(batches);
    if (!std::isfinite(loss))
      throw NumericError("meta-iteration " + std::to_string(it) + ": the query loss is " +
                         std::to_string(loss) + "; lower meta.outer_lr (" +
                         std::to_string(config.meta.outer_lr) + ") or meta.inner_lr (" +
                         std::to_string(config.meta.inner_lr) + "), or set meta.grad_clip");
    optimizer.step(learner->row_sparse_gradients());
    window_loss += loss;
    ++window;
    const int done = it + 1;
    if (done % config.train.log_every == 0 || done == total) {
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
      summary.last_loss = window_loss / window;
      metrics << nlohmann::json{{"iteration", done},
                                {"loss", summary.last_loss},
                                {"seconds", seconds}}
                     .dump()
              << "\n";
      metrics.flush();
      window_loss = 0;
      window = 0;
    }
    if (config.train.validate_every > 0 && done % config.train.validate_every == 0 && done != total)
      run_validation(done);
    if (done % config.train.checkpoint_every == 0 && done != stop) save(latest_path, done);
    progress.update(done);
  }
  progress.finish();
  if (stop == total) run_validation(total);
  save(latest_path, stop);
  if (best_iteration < 0) {
    // Without validation tasks the last weights are the best we know.
    fs::copy_file(latest_path, best_path, fs::copy_options::overwrite_existing);
    best_iteration = stop;
  }
  summary.iterations = stop;
  summary.best_validation = best_loss;
  summary.best_iteration = best_iteration;
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return summary;
}

}  // namespace ml::train
