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
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/training_progress.hpp"
#include "runtime/device.hpp"
#include "tasks/episode_sampler.hpp"
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
      auto batch = meta::make_task_batch(data.features, data.encoder, episode, device);
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A fresh run must not overwrite one; --resume needs one to continue.
void check_run_dir(const run::RunLayout& layout, bool resume) {
  const fs::path latest_path = layout.latest_checkpoint();
  if (resume) {
    if (!fs::exists(latest_path))
      throw CheckpointError("--resume: no checkpoint at '" + latest_path.string() +
                            "' (run.dir = '" + layout.dir.string() + "')");
  } else if (fs::exists(latest_path)) {
    throw ConfigError("run.dir = \"" + layout.dir.string() +
                      "\": already holds a training run; continue it with --resume, or choose "
                      "another run.dir (--set run.dir=...)");
  }
}

// The latest checkpoint of the run being resumed, which must have been trained with `resolved`.
run::Checkpoint load_resume_checkpoint(const run::RunLayout& layout,
                                       const nlohmann::json& resolved) {
  const fs::path latest_path = layout.latest_checkpoint();
  run::Checkpoint resume_from = run::load_checkpoint(latest_path.string());
  // Re-resolved, so that spellings this build writes differently (an alias such as a "tab"
  // delimiter) do not count as changes.
  nlohmann::json saved;
  to_json(saved, config::config_from_json(resume_from.meta.config));
  nlohmann::json now = resolved;
  // The run directory, device and threads may differ on resume; everything else may not.
  for (auto* j : {&saved, &now})
    for (const char* key : {"dir", "device", "threads"}) (*j)["run"].erase(key);
  if (saved != now)
    throw ConfigError("--resume: the config differs from the one '" + latest_path.string() +
                      "' was trained with (diff: " + nlohmann::json::diff(saved, now).dump() + ")");
  return resume_from;
}

// The log, tasks and features, fitted afresh or (on resume) with the checkpoint's statistics.
std::unique_ptr<pipeline::RunData> prepare_training_data(const config::Config& config,
                                                         const run::Checkpoint* resume_from,
                                                         const torch::Device& device) {
  spdlog::info("preparing data from {} file(s)", config.data.files.size());
  auto data =
      pipeline::prepare_run_data(config, resume_from ? &resume_from->meta.features : nullptr);
  const auto train_tasks = data->tasks.with_role(tasks::TaskRole::kTrain);
  if (train_tasks.empty())
    throw DataError(
        "no training task qualifies for task.support = " + std::to_string(config.task.support) +
        " + task.query = " + std::to_string(config.task.query) +
        " (see metalearn inspect --tasks for each task's size)");
  spdlog::info("{} training tasks, {} validation, {} new; {} dense features; algorithm {} on {}",
               train_tasks.size(), data->tasks.with_role(tasks::TaskRole::kValidation).size(),
               data->tasks.with_role(tasks::TaskRole::kNew).size(), data->features.dense_dim(),
               enum_name(config.meta.algorithm), device.str());
  return data;
}

// One meta-training run in progress: the learner, its optimizer and what has been written so far.
class TrainingRun {
 public:
  TrainingRun(const config::Config& config, const run::RunLayout& layout, nlohmann::json resolved,
              std::unique_ptr<pipeline::RunData> data, const torch::Device& device)
      : config_(config),
        layout_(layout),
        resolved_(std::move(resolved)),
        data_(std::move(data)),
        device_(device),
        learner_(run::build_learner(config, data_->features, device)),
        optimizer_(config.meta, learner_->meta_parameters(), learner_->row_sparse_parameters()),
        sampler_(data_->tasks.kind, tasks::episode_shape(config.task), config.seed),
        train_tasks_(data_->tasks.with_role(tasks::TaskRole::kTrain)) {
    progress_.algorithm = enum_name(config.meta.algorithm);
  }

  // Continues from `checkpoint`: weights, optimizer state and progress.
  void resume(const run::Checkpoint& checkpoint) {
    const std::string path = checkpoint.path;
    checkpoint.read_state(
        [&](torch::serialize::InputArchive& archive) {
          run::read_learner(archive, *learner_, path);
          optimizer_.load(archive, path);
        },
        device_);
    const auto saved = checkpoint.meta.progress.get<run::TrainingProgress>();
    progress_.iteration = saved.iteration;
    progress_.best_iteration = saved.best_iteration;
    progress_.best_validation_loss = saved.best_validation_loss;
    spdlog::info("resuming at meta-iteration {}", progress_.iteration);
  }

  // Trains to meta.iterations, or `stop_after` more iterations when that is positive.
  TrainSummary train(int stop_after, bool append_metrics,
                     std::chrono::steady_clock::time_point start_time);

 private:
  void save(const fs::path& path, int iteration);
  void run_validation(int iteration);
  std::vector<meta::TaskBatch> prepare_batches(int iteration) const;
  double meta_step(int iteration, std::vector<meta::TaskBatch> batches);

  const config::Config& config_;
  const run::RunLayout& layout_;
  const nlohmann::json resolved_;
  std::unique_ptr<pipeline::RunData> data_;
  const torch::Device device_;
  std::unique_ptr<meta::MetaLearner> learner_;
  OuterOptimizer optimizer_;
  const tasks::EpisodeSampler sampler_;
  const std::vector<const tasks::Task*> train_tasks_;
  run::TrainingProgress progress_;
  std::ofstream metrics_;
};

void TrainingRun::save(const fs::path& path, int iteration) {
  run::CheckpointMeta meta;
  meta.tool_version = kToolVersion;
  meta.kind = run::kCheckpointKindMeta;
  meta.config = resolved_;
  to_json(meta.features, data_->features);
  run::TrainingProgress at = progress_;
  at.iteration = iteration;
  meta.progress = at;
  run::save_checkpoint(path.string(), meta, [&](torch::serialize::OutputArchive& archive) {
    run::write_learner(archive, *learner_);
    optimizer_.save(archive);
  });
}

void TrainingRun::run_validation(int iteration) {
  Validation v = validate(*learner_, *data_, sampler_, config_, device_);
  metrics_ << nlohmann::json{{"iteration", iteration},
                             {"validation",
                              {{"loss", number_or_null(v.loss)}, {"auc", number_or_null(v.auc)}}}}
                  .dump()
           << "\n";
  metrics_.flush();
  if (std::isfinite(v.loss)) {
    if (std::isfinite(v.auc))
      spdlog::info("iteration {}: validation loss {:.4f}, AUC {:.4f}", iteration, v.loss, v.auc);
    else
      spdlog::info("iteration {}: validation loss {:.4f}", iteration, v.loss);
    if (v.loss < progress_.best_validation_loss) {
      progress_.best_validation_loss = v.loss;
      progress_.best_iteration = iteration;
      save(layout_.best_checkpoint(), iteration);
    }
  }
}

// Episodes are a pure function of the iteration, so this runs on a background thread for the
// next meta-batch while the current one trains.
std::vector<meta::TaskBatch> TrainingRun::prepare_batches(int it) const {
  auto chosen = meta_batch_tasks(train_tasks_, config_.meta.meta_batch, config_.seed,
                                 static_cast<std::uint64_t>(it));
  std::vector<meta::TaskBatch> batches;
  for (std::size_t j = 0; j < chosen.size(); ++j) {
    auto episode = sampler_.sample(*chosen[j], static_cast<std::uint64_t>(it) * 1000003ULL + j);
    batches.push_back(meta::make_task_batch(data_->features, data_->encoder, episode, device_));
  }
  return batches;
}

// One outer step; returns the meta-batch's query loss. NumericError when it is not finite.
double TrainingRun::meta_step(int it, std::vector<meta::TaskBatch> batches) {
  optimizer_.zero_grad();
  double loss = learner_->accumulate_meta_gradient(batches);
  if (!std::isfinite(loss))
    throw NumericError("meta-iteration " + std::to_string(it) + ": the query loss is " +
                       std::to_string(loss) + "; lower meta.outer_lr (" +
                       std::to_string(config_.meta.outer_lr) + ") or meta.inner_lr (" +
                       std::to_string(config_.meta.inner_lr) + "), or set meta.grad_clip");
  optimizer_.step(learner_->row_sparse_gradients());
  return loss;
}

TrainSummary TrainingRun::train(int stop_after, bool append_metrics,
                                std::chrono::steady_clock::time_point start_time) {
  metrics_.open(layout_.metrics(), append_metrics ? std::ios::app : std::ios::trunc);
  const int start = progress_.iteration;
  const int total = learner_->trains() ? config_.meta.iterations : 0;
  const int stop = stop_after > 0 ? std::min(total, start + stop_after) : total;
  TrainSummary summary;
  summary.run_dir = layout_.dir.string();
  summary.algorithm = enum_name(config_.meta.algorithm);
  Progress progress("meta-training " + summary.algorithm, "iterations", total);
  double window_loss = 0;
  int window = 0;
  std::future<std::vector<meta::TaskBatch>> next;
  auto prepare = [this](int it) { return prepare_batches(it); };
  if (start < stop) next = std::async(std::launch::async, prepare, start);
  for (int it = start; it < stop; ++it) {
    std::vector<meta::TaskBatch> batches = next.get();
    if (it + 1 < stop) next = std::async(std::launch::async, prepare, it + 1);
    window_loss += meta_step(it, std::move(batches));
    ++window;
    const int done = it + 1;
    if (done % config_.train.log_every == 0 || done == total) {
      summary.last_loss = window_loss / window;
      metrics_ << nlohmann::json{{"iteration", done},
                                 {"loss", summary.last_loss},
                                 {"seconds", seconds_since(start_time)}}
                      .dump()
               << "\n";
      metrics_.flush();
      window_loss = 0;
      window = 0;
    }
    if (config_.train.validate_every > 0 && done % config_.train.validate_every == 0 &&
        done != total)
      run_validation(done);
    if (done % config_.train.checkpoint_every == 0 && done != stop)
      save(layout_.latest_checkpoint(), done);
    progress.update(done);
  }
  progress.finish();
  if (stop == total) run_validation(total);
  save(layout_.latest_checkpoint(), stop);
  if (progress_.best_iteration < 0) {
    // Without validation tasks the last weights are the best we know.
    fs::copy_file(layout_.latest_checkpoint(), layout_.best_checkpoint(),
                  fs::copy_options::overwrite_existing);
    progress_.best_iteration = stop;
  }
  summary.iterations = stop;
  summary.best_validation = progress_.best_validation_loss;
  summary.best_iteration = progress_.best_iteration;
  return summary;
}

}  // namespace

TrainSummary run_training(const config::Config& config, const TrainOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  runtime::configure_compute(config.run.threads);
  const torch::Device device = runtime::torch_device(config.run.device);
  const run::RunLayout layout(config.run.dir);
  nlohmann::json resolved;
  to_json(resolved, config);
  check_run_dir(layout, options.resume);
  fs::create_directories(layout.checkpoints());
  const ScopedLogFile log_file(layout.train_log().string());

  run::Checkpoint resume_from;
  if (options.resume) resume_from = load_resume_checkpoint(layout, resolved);
  write_file_atomically(layout.config().string(),
                        [&](std::ostream& out) { out << resolved.dump(2) << "\n"; });

  auto data = prepare_training_data(config, options.resume ? &resume_from : nullptr, device);
  TrainingRun training(config, layout, resolved, std::move(data), device);
  if (options.resume) training.resume(resume_from);
  TrainSummary summary = training.train(options.stop_after, options.resume, start_time);
  summary.seconds = seconds_since(start_time);
  return summary;
}

}  // namespace ml::train
