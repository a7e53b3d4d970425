// Meta-training runs: see trainer.hpp.
#include "train/trainer.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <optional>

#include "meta/meta_learner.hpp"
#include "meta/probe_baselines.hpp"
#include "models/query_metrics.hpp"
#include "pipeline/run_data.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/divergence.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/split_record.hpp"
#include "run/training_progress.hpp"
#include "runtime/device.hpp"
#include "runtime/distributed.hpp"
#include "runtime/resident_memory.hpp"
#include "runtime/work_share.hpp"
#include "runtime/worker_pool.hpp"
#include "tasks/episode_sampler.hpp"
#include "train/data_parallel.hpp"
#include "train/model_selection.hpp"
#include "train/outer_optimizer.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/json_diff.hpp"
#include "util/logging.hpp"
#include "util/progress.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"
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

// What meta-training draws its episodes from: a purchase log's tasks (LogEpisodes) or a text
// dataset's classes (TextEpisodes), so that one training loop, checkpointing and validation
// serve both.
class EpisodeSource {
 public:
  virtual ~EpisodeSource() = default;
  virtual tasks::LabelKind kind() const = 0;
  // Tasks [first, last) of meta-iteration `iteration`'s meta-batch (a rank's share of it; all
  // of it in one process) as batches: a pure function of the iteration, so the next one is
  // prepared on a background thread while the current one trains.
  virtual std::vector<meta::TaskBatch> meta_batch(std::uint64_t iteration, std::size_t first,
                                                  std::size_t last) const = 0;
  // A validation pass: how many episodes, and the i-th of them (the same at every pass).
  virtual std::size_t validation_episodes() const = 0;
  virtual meta::TaskBatch validation_episode(std::size_t i) const = 0;
  // A validation episode's query outputs, by which checkpoints are chosen: the learner adapted
  // to the support for meta.adapt_steps steps.
  virtual torch::Tensor validation_outputs(const meta::MetaLearner& learner,
                                           const meta::TaskBatch& batch) const {
    return learner.adapted_outputs(batch.support, batch.query, config().meta.adapt_steps);
  }
  virtual const config::Config& config() const = 0;
  // A freshly initialised learner for this data (run::build_learner).
  virtual std::unique_ptr<meta::MetaLearner> build_learner() const = 0;
  // What in a diverged meta-batch's input is to blame, "" when nothing is.
  virtual std::string non_finite_input(const std::vector<meta::TaskBatch>& batches) const = 0;
  // run::exploding_loss_limit of the training episodes' labels.
  virtual double loss_limit() const = 0;
  // What a checkpoint needs besides the weights to be used later: the fitted feature
  // statistics, or the class names (in the metadata) and the tokenizer (in the archive).
  virtual void describe(run::CheckpointMeta& meta) const = 0;
  // DataError when the checkpoint `meta` (at `path`), about to be resumed, was trained on
  // another split of the data (run/split_record.hpp).
  virtual void check_resumed(const run::CheckpointMeta&, const std::string&) const {}
  virtual void write_state(torch::serialize::OutputArchive& archive) const = 0;
};

// A purchase log's tasks: episodes of the training tasks, validation_episodes episodes of each
// validation task that can give one.
class LogEpisodes : public EpisodeSource {
 public:
  LogEpisodes(const config::Config& config, std::unique_ptr<pipeline::RunData> data,
              const torch::Device& device)
      : config_(config),
        data_(std::move(data)),
        device_(device),
        sampler_(data_->tasks.kind, tasks::episode_shape(config.task), config.seed),
        train_tasks_(data_->tasks.with_role(tasks::TaskRole::kTrain)) {
    for (const tasks::Task* task : data_->tasks.with_role(tasks::TaskRole::kValidation)) {
      if (!sampler_.check(*task).empty()) continue;
      for (int e = 0; e < config.train.validation_episodes; ++e) validation_.emplace_back(task, e);
    }
  }
  tasks::LabelKind kind() const override { return data_->tasks.kind; }
  const config::Config& config() const override { return config_; }
  std::vector<meta::TaskBatch> meta_batch(std::uint64_t it, std::size_t first,
                                          std::size_t last) const override {
    auto chosen = meta_batch_tasks(train_tasks_, config_.meta.meta_batch, config_.seed, it);
    std::vector<meta::TaskBatch> batches;
    for (std::size_t j = first; j < std::min(last, chosen.size()); ++j) {
      auto episode = sampler_.sample(*chosen[j], it * 1000003ULL + j);
      batches.push_back(meta::make_task_batch(data_->features, data_->encoder, episode, device_));
    }
    return batches;
  }
  std::size_t validation_episodes() const override { return validation_.size(); }
  meta::TaskBatch validation_episode(std::size_t i) const override {
    const auto& [task, e] = validation_[i];
    auto episode = sampler_.sample(*task, kValidationEpisodeBase + static_cast<std::uint64_t>(e));
    return meta::make_task_batch(data_->features, data_->encoder, episode, device_);
  }
  std::unique_ptr<meta::MetaLearner> build_learner() const override {
    return run::build_learner(config_, data_->features, device_);
  }
  std::string non_finite_input(const std::vector<meta::TaskBatch>& batches) const override {
    return meta::non_finite_input(data_->features, batches);
  }
  double loss_limit() const override { return run::exploding_loss_limit(kind(), train_tasks_); }
  void describe(run::CheckpointMeta& meta) const override {
    to_json(meta.features, data_->features);
    meta.progress[run::kSplitKey] = run::split_record(data_->tasks);
  }
  void check_resumed(const run::CheckpointMeta& meta, const std::string& path) const override {
    run::check_split_record(meta.progress, data_->tasks, path);
  }
  void write_state(torch::serialize::OutputArchive&) const override {}

 private:
  const config::Config& config_;
  const std::unique_ptr<pipeline::RunData> data_;
  const torch::Device device_;
  const tasks::EpisodeSampler sampler_;
  const std::vector<const tasks::Task*> train_tasks_;
  std::vector<std::pair<const tasks::Task*, int>> validation_;
};

// A text dataset's classes: N-way K-shot episodes of the training classes; a validation pass
// is train.validation_episodes N-way episodes per N eligible validation classes (rounded up),
// so that every validation class takes part about validation_episodes times.
class TextEpisodes : public EpisodeSource {
 public:
  TextEpisodes(const config::Config& config, std::unique_ptr<pipeline::TextRunData> data,
               const torch::Device& device)
      : config_(config), data_(std::move(data)), device_(device) {
    if (const std::string why =
            pipeline::split_problem(config, data_->split, tasks::ClassSplitPart::kNew);
        !why.empty())
      spdlog::warn("{}; eval will refuse N-way episodes of the new classes", why);
    const auto& validation = data_->sampler(tasks::ClassSplitPart::kValidation);
    if (const std::string why = validation.check(); !why.empty()) {
      spdlog::warn("no validation episodes ({}): best.mlckpt will be the last weights", why);
      return;
    }
    const auto ways = static_cast<std::size_t>(config.task.label.ways);
    validation_ = static_cast<std::size_t>(config.train.validation_episodes) *
                  ((validation.eligible().size() + ways - 1) / ways);
  }
  tasks::LabelKind kind() const override { return tasks::LabelKind::kMulticlass; }
  const config::Config& config() const override { return config_; }
  // Pretrain's joint head has a row per training class, none for the validation classes: its
  // encoder is chosen by nearest-class-mean accuracy on the episodes (SimpleShot, Wang et al.
  // 2019), the classifier eval's baselines put on it.
  torch::Tensor validation_outputs(const meta::MetaLearner& learner,
                                   const meta::TaskBatch& batch) const override {
    if (learner.algorithm() != config::Algorithm::kPretrain)
      return EpisodeSource::validation_outputs(learner, batch);
    torch::NoGradGuard no_grad;
    const auto& model = *learner.model();
    const std::vector<torch::Tensor> params = model.params();
    return meta::nearest_class_mean_outputs(
        model.represent(batch.support, params), batch.support.target,
        model.represent(batch.query, params), config_.task.label.ways);
  }
  std::vector<meta::TaskBatch> meta_batch(std::uint64_t it, std::size_t first,
                                          std::size_t last) const override {
    const auto& sampler = data_->sampler(tasks::ClassSplitPart::kTrain);
    std::vector<meta::TaskBatch> batches;
    const auto size = static_cast<std::size_t>(config_.meta.meta_batch);
    for (std::size_t j = first; j < std::min(last, size); ++j)
      batches.push_back(
          pipeline::make_text_task_batch(*data_, sampler.sample(it * 1000003ULL + j), device_));
    return batches;
  }
  std::size_t validation_episodes() const override { return validation_; }
  meta::TaskBatch validation_episode(std::size_t i) const override {
    const auto& sampler = data_->sampler(tasks::ClassSplitPart::kValidation);
    return pipeline::make_text_task_batch(*data_, sampler.sample(kValidationEpisodeBase + i),
                                          device_);
  }
  std::unique_ptr<meta::MetaLearner> build_learner() const override {
    return run::build_text_learner(config_, *data_, device_);
  }
  // Token ids and class labels are always finite: the learning rates are to blame.
  std::string non_finite_input(const std::vector<meta::TaskBatch>&) const override { return ""; }
  double loss_limit() const override {
    return run::kExplodingLossFactor *
           std::max(1.0, std::log(static_cast<double>(config_.task.label.ways)));
  }
  void describe(run::CheckpointMeta& meta) const override {
    meta.features = {
        {"text",
         {{"class_names", data_->class_names()}, {"vocab_size", data_->tokenizer->vocab_size()}}}};
    if (data_->backbone) meta.features["text"]["backbone"] = run::backbone_record(*data_->backbone);
  }
  void write_state(torch::serialize::OutputArchive& archive) const override {
    run::write_tokenizer(archive, *data_->tokenizer);
  }

 private:
  const config::Config& config_;
  const std::unique_ptr<pipeline::TextRunData> data_;
  const torch::Device device_;
  std::size_t validation_ = 0;
};

// One validation pass: the source's validation episodes, scored on the query by
// EpisodeSource::validation_outputs. The episodes run on the pool's workers; their
// scores are added in episode order, so the result does not depend on how many workers there
// are. nullopt when a signal came first (util/interrupt.hpp): a pass over a large log takes
// long, and Ctrl-C stops between episodes. With a process group each rank scores its share of
// the episodes and all end with every score.
std::optional<ValidationScores> validate(const meta::MetaLearner& learner,
                                         const EpisodeSource& source, runtime::WorkerPool& pool,
                                         runtime::ProcessGroup* group) {
  const auto kind = source.kind();
  std::vector<std::pair<double, metrics::QueryMetrics>> scores(source.validation_episodes());
  const std::pair<std::size_t, std::size_t> mine =
      group ? runtime::share_of(scores.size(), group->rank(), group->size())
            : std::make_pair(std::size_t{0}, scores.size());
  pool.run(mine.second - mine.first, [&](std::size_t k) {
    if (interrupt_signal() != 0) return;  // the pass is abandoned below
    const std::size_t i = mine.first + k;
    const meta::TaskBatch batch = source.validation_episode(i);
    torch::Tensor out = source.validation_outputs(learner, batch);
    scores[i] = {models::task_loss(out, batch.query.target, kind).item<double>(),
                 models::query_metrics(out, batch.query.target, kind)};
  });
  if (group ? combine_validation_scores(*group, scores, mine, interrupt_signal()) != 0
            : interrupt_signal() != 0)
    return std::nullopt;
  ValidationMean mean;
  for (const auto& [loss, metrics] : scores) mean.add(loss, metrics);
  return mean.mean();
}

// Seconds per meta-gradient of `tasks` cut into each of `chunk_counts` chunks on `pool`: the
// median of three, interleaved, after an untimed run of each (which warms the workers'
// allocators and torch state). The gradients are thrown away.
// Each meta-parameter's outer learning rate: model.backbone.lr for a trainable backbone's
// weights when set, meta.outer_lr for the rest.
std::vector<double> outer_learning_rates(const config::Config& config,
                                         const meta::MetaLearner& learner) {
  std::vector<double> rates(learner.meta_parameters().size(), config.meta.outer_lr);
  const auto& groups = learner.model()->groups();
  if (config.model.backbone.lr > 0)
    for (std::size_t i = 0; i < groups.size(); ++i)
      if (groups[i] == models::ParamGroup::kBackbone) rates[i] = config.model.backbone.lr;
  return rates;
}

std::vector<double> time_meta_gradients(meta::MetaLearner& learner, OuterOptimizer& optimizer,
                                        const std::vector<meta::TaskBatch>& tasks,
                                        const std::vector<std::size_t>& chunk_counts,
                                        runtime::WorkerPool& pool) {
  std::vector<std::vector<double>> seconds(chunk_counts.size());
  for (int round = 0; round < 4; ++round) {
    for (std::size_t k = 0; k < chunk_counts.size(); ++k) {
      learner.set_task_chunks(chunk_counts[k], &pool);
      optimizer.zero_grad();
      const auto start = std::chrono::steady_clock::now();
      learner.accumulate_meta_gradient(tasks);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (round > 0) seconds[k].push_back(s);
    }
  }
  optimizer.zero_grad();
  std::vector<double> medians;
  for (auto& s : seconds) {
    std::sort(s.begin(), s.end());
    medians.push_back(s[s.size() / 2]);
  }
  return medians;
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A fresh run must not overwrite one; --resume needs one to continue, and one that did not
// diverge (it would again: the config cannot change). A folder without a checkpoint is no
// run: a fresh run takes it over.
void check_run_dir(const run::RunLayout& layout, bool resume) {
  const fs::path latest_path = layout.latest_checkpoint();
  const std::optional<run::Divergence> diverged = run::read_divergence(layout);
  if (resume) {
    if (!fs::exists(latest_path))
      throw CheckpointError("--resume: no checkpoint at '" + latest_path.string() +
                            "' (run.dir = '" + layout.dir.string() + "')");
    if (diverged)
      throw NumericError("--resume: the run in '" + layout.dir.string() +
                         "' diverged at meta-iteration " + std::to_string(diverged->iteration) +
                         " and would again with the same config; train afresh into another "
                         "run.dir (or delete this one) with the learning rates lowered");
  } else if (fs::exists(latest_path)) {
    throw ConfigError(
        "run.dir = \"" + layout.dir.string() + "\": already holds a training run" +
        (diverged ? " (it diverged at meta-iteration " + std::to_string(diverged->iteration) + ")"
                  : std::string()) +
        "; continue it with --resume, or choose another run.dir (--set "
        "run.dir=...)");
  }
}

// A fresh run that stops before its first checkpoint (bad data, divergence, an interrupt) is no
// run: the files it wrote go again, and the folders it created, so nothing is left that a user
// must clean up or that could be taken for a run. A run with a checkpoint is kept for --resume.
class FreshRunCleanup {
 public:
  explicit FreshRunCleanup(const run::RunLayout& layout) : layout_(layout) {
    // The outermost folder of run.dir that does not exist yet: all of it is this run's.
    for (fs::path p = layout.dir; !p.empty() && !fs::exists(p); p = p.parent_path()) created_ = p;
  }
  ~FreshRunCleanup() {
    std::error_code ec;
    if (fs::exists(layout_.latest_checkpoint(), ec)) return;
    if (!created_.empty()) {
      fs::remove_all(created_, ec);
      return;
    }
    for (const fs::path& p : {layout_.config(), layout_.metrics(), layout_.train_log(),
                              layout_.divergence(), layout_.checkpoints()})
      fs::remove(p, ec);  // checkpoints/ only when empty
  }
  FreshRunCleanup(const FreshRunCleanup&) = delete;
  FreshRunCleanup& operator=(const FreshRunCleanup&) = delete;

 private:
  const run::RunLayout& layout_;
  fs::path created_;
};

// The run's folders, or an IoError naming the one that cannot be created and why.
void create_run_folders(const run::RunLayout& layout) {
  std::error_code ec;
  fs::create_directories(layout.checkpoints(), ec);
  if (ec)
    throw IoError("run.dir = \"" + layout.dir.string() + "\": cannot create '" +
                  layout.checkpoints().string() + "': " + ec.message());
}

// The latest checkpoint of the run being resumed, which must have been trained with `resolved`.
// The run's latest checkpoint from `bytes` (read_checkpoint_file of `latest_path`), checked
// against the config.
run::Checkpoint load_resume_checkpoint(const run::RunLayout& layout, const nlohmann::json& resolved,
                                       const fs::path& latest_path, std::string bytes) {
  run::Checkpoint resume_from = run::checkpoint_from_bytes(latest_path.string(), std::move(bytes));
  // Re-resolved, so that spellings this build writes differently (an alias such as a "tab"
  // delimiter, a relative data path of an earlier version) do not count as changes.
  nlohmann::json saved;
  to_json(saved, run::saved_config(resume_from.meta.config, latest_path.string()));
  nlohmann::json now = resolved;
  // The run directory, device and threads may differ on resume; everything else may not.
  for (auto* j : {&saved, &now})
    for (const char* key : {"dir", "device", "threads", "memory_limit_mib"}) (*j)["run"].erase(key);
  if (saved != now)
    throw ConfigError("--resume: the config differs from the one '" + latest_path.string() +
                      "' was trained with, at " +
                      first_json_difference(saved, now, "", "in the checkpoint", "in this config") +
                      "; resume with the run's own config (" + layout.config().string() +
                      ") or train afresh into another run.dir");
  return resume_from;
}

// A text run's classes, tokenizer and episodes; on resume with the checkpoint's tokenizer.
std::unique_ptr<EpisodeSource> prepare_text_episodes(const config::Config& config,
                                                     const run::Checkpoint* resume_from,
                                                     const torch::Device& device) {
  spdlog::info("preparing text data from {} file(s)", config.data.files.size());
  std::optional<std::string> tokenizer;
  if (resume_from) tokenizer = run::read_tokenizer(*resume_from);
  auto data =
      pipeline::prepare_text_run_data(config, tokenizer ? &*tokenizer : nullptr,
                                      resume_from ? run::backbone_checksum(*resume_from) : 0);
  spdlog::info(
      "{} texts: {} training classes, {} validation, {} new; {} token ids ({} pieces); "
      "{}-way {}-shot episodes; algorithm {} on {}",
      data->dataset.size(), data->split.train.size(), data->split.validation.size(),
      data->split.new_classes.size(), data->tokenizer->vocab_size(), data->tokenizer->piece_count(),
      config.task.label.ways, config.task.support, enum_name(config.meta.algorithm), device.str());
  return std::make_unique<TextEpisodes>(config, std::move(data), device);
}

// The log, tasks and features, fitted afresh or (on resume) with the checkpoint's statistics;
// or a text run's data.
std::unique_ptr<EpisodeSource> prepare_training_data(const config::Config& config,
                                                     const run::Checkpoint* resume_from,
                                                     const torch::Device& device) {
  if (config.text_run()) return prepare_text_episodes(config, resume_from, device);
  spdlog::info("preparing data from {} file(s)", config.data.files.size());
  std::optional<features::FeatureSpace> saved;
  if (resume_from)
    saved = run::saved_features(resume_from->meta.features,
                                run::RunLayout(config.run.dir).latest_checkpoint().string());
  auto data = pipeline::prepare_run_data(config, saved ? &*saved : nullptr);
  tasks::require_training_tasks(data->log, data->tasks, config);
  const auto train_tasks = data->tasks.with_role(tasks::TaskRole::kTrain);
  spdlog::info("{} training tasks, {} validation, {} new; {} dense features; algorithm {} on {}",
               train_tasks.size(), data->tasks.with_role(tasks::TaskRole::kValidation).size(),
               data->tasks.with_role(tasks::TaskRole::kNew).size(), data->features.dense_dim(),
               enum_name(config.meta.algorithm), device.str());
  return std::make_unique<LogEpisodes>(config, std::move(data), device);
}

// The validation scores a metrics.jsonl line records: the loss and the label kind's metrics.
nlohmann::json scores_json(const ValidationScores& v, tasks::LabelKind kind) {
  nlohmann::json j = {{"loss", number_or_null(v.loss)}};
  switch (kind) {
    case tasks::LabelKind::kBinary:
      j["auc"] = number_or_null(v.metrics.auc);
      j["accuracy"] = number_or_null(v.metrics.accuracy);
      break;
    case tasks::LabelKind::kMulticlass:
      j["accuracy"] = number_or_null(v.metrics.accuracy);
      break;
    case tasks::LabelKind::kRegression:
      j["rmse"] = number_or_null(v.metrics.rmse);
      j["mae"] = number_or_null(v.metrics.mae);
      break;
  }
  return j;
}

// "loss 0.6100, AUC 0.6800, accuracy 0.6300": the scores of scores_json for a log line.
std::string scores_text(const ValidationScores& v, tasks::LabelKind kind) {
  std::string text = fmt::format("loss {:.4f}", v.loss);
  auto add = [&](const char* name, double value) {
    if (std::isfinite(value)) text += fmt::format(", {} {:.4f}", name, value);
  };
  if (kind == tasks::LabelKind::kBinary) add("AUC", v.metrics.auc);
  if (kind != tasks::LabelKind::kRegression) add("accuracy", v.metrics.accuracy);
  if (kind == tasks::LabelKind::kRegression) {
    add("RMSE", v.metrics.rmse);
    add("MAE", v.metrics.mae);
  }
  return text;
}

// Keeps the lines of metrics.jsonl up to `iteration` (a resumed run's checkpoint) and drops the
// ones a crashed or stopped call wrote after it, which the resumed run writes again, and an
// unfinished last line (a crash mid-write). Lines that are not metrics lines are kept as they
// are. Rewritten atomically, and only when something goes.
void keep_metrics_through(const fs::path& path, int iteration) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no newline after it: cut off mid-write
      dropped = true;
      break;
    }
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("iteration") && j["iteration"].is_number_integer() &&
        j["iteration"].get<int>() > iteration) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  in.close();
  if (dropped) write_file_atomically(path.string(), [&](std::ostream& out) { out << kept; });
}

// The summary of a run whose checkpoint is already at the end, or std::nullopt when there is
// more to train. The final validation and checkpoints were written by the call that finished it.
std::optional<TrainSummary> finished_run_summary(const config::Config& config,
                                                 const run::RunLayout& layout,
                                                 const nlohmann::json& saved_progress) {
  const auto progress = saved_progress.get<run::TrainingProgress>();
  const int total =
      config.meta.algorithm == config::Algorithm::kScratch ? 0 : config.meta.iterations;
  if (progress.iteration < total || progress.validation_pending) return std::nullopt;
  spdlog::info("the run in {} is already finished ({} of {} meta-iterations); nothing to do",
               layout.dir.string(), progress.iteration, total);
  TrainSummary s;
  s.run_dir = layout.dir.string();
  s.algorithm = progress.algorithm.empty() ? enum_name(config.meta.algorithm) : progress.algorithm;
  s.iterations = progress.iteration;
  s.already_finished = true;
  s.last_loss = progress.last_loss;
  s.selection_metric =
      resolve_selection_metric(config.train.selection_metric, tasks::label_kind(config));
  s.best_validation = progress.best_validation;
  s.best_iteration = progress.best_iteration;
  return s;
}

// One meta-training run in progress: the learner, its optimizer and what has been written so far.
class TrainingRun {
 public:
  TrainingRun(const config::Config& config, const run::RunLayout& layout, nlohmann::json resolved,
              std::unique_ptr<EpisodeSource> episodes, const torch::Device& device,
              const runtime::ThreadBudget& budget, std::chrono::steady_clock::time_point call_start,
              runtime::ProcessGroup* group)
      : config_(config),
        layout_(layout),
        resolved_(std::move(resolved)),
        episodes_(std::move(episodes)),
        device_(device),
        learner_(episodes_->build_learner()),
        optimizer_(config.meta, learner_->meta_parameters(), learner_->row_sparse_parameters(),
                   outer_learning_rates(config, *learner_)),
        metric_(resolve_selection_metric(config.train.selection_metric, episodes_->kind())),
        loss_limit_(episodes_->loss_limit()),
        budget_(budget),
        call_start_(call_start),
        group_(group),
        writes_(group == nullptr || group->rank() == 0),
        share_(group ? runtime::share_of(static_cast<std::size_t>(config.meta.meta_batch),
                                         group->rank(), group->size())
                     : std::make_pair(std::size_t{0},
                                      static_cast<std::size_t>(config.meta.meta_batch))) {
    progress_.algorithm = enum_name(config.meta.algorithm);
    progress_.selection_metric = enum_name(metric_);
  }

  // Continues from `checkpoint`: weights, optimizer state and progress.
  void resume(const run::Checkpoint& checkpoint) {
    const std::string path = checkpoint.path;
    episodes_->check_resumed(checkpoint.meta, path);
    checkpoint.read_state(
        [&](torch::serialize::InputArchive& archive) {
          run::read_learner(archive, *learner_, path);
          optimizer_.load(archive, path);
        },
        device_);
    const auto saved = checkpoint.meta.progress.get<run::TrainingProgress>();
    progress_ = saved;
    progress_.algorithm = enum_name(config_.meta.algorithm);
    // A maml run that fell back to first order (meta.first_order_fallback) goes on so.
    if (config_.meta.algorithm == config::Algorithm::kMaml &&
        saved.algorithm == enum_name(config::Algorithm::kFomaml)) {
      learner_->use_first_order();
      progress_.algorithm = saved.algorithm;
      spdlog::info(
          "meta-training first order, as the run did from its start (meta.first_order_fallback)");
    } else if (config_.meta.algorithm == config::Algorithm::kMaml &&
               config_.meta.first_order_fallback) {
      spdlog::info(
          "meta-training second order, as the run did from its start (the fallback to "
          "first order is decided once, before the first meta-step)");
    }
    progress_.selection_metric = enum_name(metric_);
    if (saved.best_iteration >= 0 && saved.selection_metric != progress_.selection_metric) {
      // A run from before train.selection_metric chose by loss: its best cannot be compared.
      spdlog::warn(
          "best.mlckpt (iteration {}) was chosen by {}, this run chooses by {}: the next "
          "validation replaces it",
          saved.best_iteration, saved.selection_metric.empty() ? "?" : saved.selection_metric,
          progress_.selection_metric);
      progress_.best_iteration = -1;
      progress_.best_validation = NAN;
    }
    resumed_ = true;
    spdlog::info("resuming at meta-iteration {}", progress_.iteration);
  }

  // Trains to meta.iterations, or `stop_after` more iterations when that is positive.
  TrainSummary train(int stop_after);

 private:
  void save(const fs::path& path);
  [[noreturn]] void stop_diverged(int iteration, const std::string& message);
  [[noreturn]] void stop_interrupted(int signal, int total, bool saved);
  // False when a signal interrupted it: progress_.validation_pending is set, nothing written.
  bool run_validation();
  // One line of metrics.jsonl, flushed; IoError when it cannot be written (a full disk).
  void log_metrics(const nlohmann::json& line);
  void plan_threads(int start, int stop);
  // meta.first_order_fallback: measures one task's second-order meta-gradient and, when the
  // tasks computed at once (`chunks` side by side) would take the process past the memory
  // limit, switches the learner to first order; every rank of a group decides alike.
  void choose_order(std::size_t chunks, int start);
  std::vector<meta::TaskBatch> prepare_batches(int iteration) const;
  double meta_step(int iteration, std::vector<meta::TaskBatch> batches);
  // A trainable backbone whose weights the first meta-step gave no gradient (its output is
  // detached from them): it would never train, so the user hears it once.
  void warn_if_the_backbone_gets_no_gradient() const;
  // The peak resident memory of the first meta-step (runtime/resident_memory.hpp) above
  // `before`, the process's just before it, logged once.
  void log_meta_step_memory(const runtime::ResidentMemory& before) const;
  double seconds() const { return seconds_before_ + seconds_since(call_start_); }
  TrainSummary summary() const;
  // The interrupt to stop at: this process's, or under a group the largest any rank saw (a
  // collective), so that all ranks stop at the same meta-iteration.
  int agreed_signal() {
    if (!group_) return interrupt_signal();
    const auto start = std::chrono::steady_clock::now();
    const int signal = static_cast<int>(group_->all_max(interrupt_signal()));
    signal_seconds_ += seconds_since(start);
    return signal;
  }
  // Under a group: how the meta-steps' time split between computing and the collectives, and
  // what each meta-iteration sends, logged once at the end (scripts/bench_dist.sh reads it).
  void log_collective_share(int iterations) const;

  const config::Config& config_;
  const run::RunLayout& layout_;
  const nlohmann::json resolved_;
  const std::unique_ptr<EpisodeSource> episodes_;
  const torch::Device device_;
  std::unique_ptr<meta::MetaLearner> learner_;
  OuterOptimizer optimizer_;
  const config::SelectionMetric metric_;  // resolved: never "auto"
  const double loss_limit_;               // run::exploding_loss_limit
  const runtime::ThreadBudget budget_;
  std::unique_ptr<runtime::WorkerPool> pool_;  // meta-batch chunks and validation episodes
  const std::chrono::steady_clock::time_point call_start_;
  runtime::ProcessGroup* const group_;  // nullptr: one process
  const bool writes_;                   // the run folder is this process's to write (rank 0)
  // [begin, end) of each meta-batch's tasks this rank computes (all of them in one process).
  const std::pair<std::size_t, std::size_t> share_;
  double seconds_before_ = 0;  // training seconds of the calls before this one
  bool resumed_ = false;
  // This call's meta-steps (their gradient all-reduce included), the all-reduce alone, and
  // the stop-signal agreement after each step: collectives count the wait for the slowest rank.
  double step_seconds_ = 0, reduce_seconds_ = 0, signal_seconds_ = 0;
  std::int64_t gathered_bytes_ = 0;  // sent to the row-sparse all-gathers, all iterations
  run::TrainingProgress progress_;
  std::ofstream metrics_;
};

void TrainingRun::save(const fs::path& path) {
  // The last guard: whatever the checks before the step missed, a checkpoint never holds
  // weights that are not finite.
  {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> weights = learner_->model()->params();
    for (const torch::Tensor& rate : learner_->inner_learning_rates()) weights.push_back(rate);
    const int step = progress_.iteration - 1;  // the step that made them
    for (const torch::Tensor& w : weights)
      if (!torch::isfinite(w).all().item<bool>())
        stop_diverged(step, "meta-iteration " + std::to_string(step) +
                                ": the weights are no longer finite; lower meta.outer_lr (" +
                                std::to_string(config_.meta.outer_lr) + ") or set meta.grad_clip");
    // Rank 0's checkpoint speaks for the group only if every rank holds the same weights.
    if (group_) check_same_weights(*group_, weights, progress_.iteration);
  }
  if (!writes_) return;
  run::CheckpointMeta meta;
  meta.tool_version = kToolVersion;
  meta.kind = run::kCheckpointKindMeta;
  meta.config = resolved_;
  run::TrainingProgress at = progress_;
  at.seconds = seconds();
  meta.progress = at;
  episodes_->describe(meta);  // after the progress, to which it adds the split
  run::save_checkpoint(path.string(), meta, [&](torch::serialize::OutputArchive& archive) {
    run::write_learner(archive, *learner_);
    optimizer_.save(archive);
    episodes_->write_state(archive);
  });
}

void TrainingRun::log_metrics(const nlohmann::json& line) {
  if (!writes_) return;
  metrics_ << line.dump() << "\n";
  metrics_.flush();
  if (!metrics_)
    throw IoError("cannot write '" + layout_.metrics().string() + "': " + std::strerror(errno));
}

bool TrainingRun::run_validation() {
  const int iteration = progress_.iteration;
  const auto kind = episodes_->kind();
  const std::optional<ValidationScores> scores = validate(*learner_, *episodes_, *pool_, group_);
  progress_.validation_pending = !scores;
  if (!scores) {
    spdlog::info("iteration {}: validation interrupted; a resumed run does it first", iteration);
    return false;
  }
  const ValidationScores& v = *scores;
  const double value = selection_value(v, metric_);
  const bool best = improves(metric_, value, progress_.best_validation);
  log_metrics({{"iteration", iteration},
               {"validation", scores_json(v, kind)},
               {"selection", {{"metric", enum_name(metric_)}, {"best", best}}}});
  if (std::isnan(v.loss)) return true;  // no validation task could give an episode
  const std::string label = metric_label(metric_);
  if (best) {
    progress_.best_validation = value;
    progress_.best_iteration = iteration;
    spdlog::info("iteration {}: validation {}; best {} so far, kept as best.mlckpt", iteration,
                 scores_text(v, kind), label);
    save(layout_.best_checkpoint());
  } else if (progress_.best_iteration >= 0) {
    spdlog::info("iteration {}: validation {}; best.mlckpt stays iteration {} ({} {:.4f})",
                 iteration, scores_text(v, kind), progress_.best_iteration, label,
                 progress_.best_validation);
  } else {
    spdlog::info("iteration {}: validation {}; no {} to choose a checkpoint by", iteration,
                 scores_text(v, kind), label);
  }
  return true;
}

// Cuts each meta-batch into chunks and starts the workers that compute them and the validation
// episodes (runtime/thread_plan.hpp). The chunks decide the meta-gradient's float rounding
// (MetaLearner::accumulate_meta_gradient), so they are recorded in the checkpoints and a resumed
// run keeps them unless the thread budget is given explicitly: it then ends with the weights of
// the uninterrupted run. An explicit budget is spent as planned. The automatic one (the usable
// cores) is measured first, because workers that meet at every meta-step lose to one thread when
// other processes hold cores: a few meta-gradients of the first meta-batch as one stack and cut
// into a chunk per worker, interleaved, and the workers are kept only when 5% faster.
void TrainingRun::plan_threads(int start, int stop) {
  const tasks::EpisodeShape shape = tasks::episode_shape(config_.task);
  runtime::WorkShape work;
  // A GPU runs the chunks' kernels one after another on its stream: one stack is best there.
  const auto meta_batch = share_.second - share_.first;  // this rank's tasks
  work.units = device_.is_cuda() ? 1 : static_cast<int>(meta_batch);
  work.largest_product =
      learner_->model()->largest_product(std::max(shape.support, 1) + shape.query);
  const runtime::ThreadPlan plan = runtime::apply_thread_plan(budget_, work, "meta-batch's tasks");
  pool_ = std::make_unique<runtime::WorkerPool>(plan.workers);
  const int recorded = resumed_ ? progress_.task_chunks : 0;
  std::string why;  // when it is not simply one chunk per worker
  learner_->set_task_chunks(static_cast<std::size_t>(plan.workers), pool_.get());
  if (!resumed_ && start < stop) choose_order(static_cast<std::size_t>(plan.workers), start);
  if (recorded > 0 && budget_.automatic) {
    learner_->set_task_chunks(static_cast<std::size_t>(recorded), pool_.get());
    why = "as the run was started, so that it ends as an uninterrupted run";
  } else if (recorded > 0 &&
             learner_->chunks_for(meta_batch) != static_cast<std::size_t>(recorded)) {
    why = "one per worker; the run was started with " + std::to_string(recorded) +
          ", so its weights will equal an uninterrupted run's to float rounding only";
  } else if (budget_.automatic && learner_->chunks_for(meta_batch) > 1 && start < stop) {
    const std::size_t chunks = learner_->chunks_for(meta_batch);
    const std::vector<double> seconds =
        time_meta_gradients(*learner_, optimizer_, prepare_batches(start), {1, chunks}, *pool_);
    const double speedup = seconds[0] / seconds[1];
    learner_->set_task_chunks(speedup < 1.05 ? 1 : chunks, pool_.get());
    why = fmt::format("{} workers measured at {:.2f}x one thread's rate at start-up", chunks,
                      speedup);
  }
  const std::size_t chunks = learner_->chunks_for(meta_batch);
  progress_.task_chunks = static_cast<int>(chunks);
  const std::string as = chunks == 1 ? "as one stack on one thread"
                                     : "in " + count_of(static_cast<long long>(chunks), "chunk");
  spdlog::info("meta-steps: each meta-batch {}{}", as,
               why.empty() ? std::string(chunks > 1 ? " (one per worker)" : "") : " (" + why + ")");
}

void TrainingRun::choose_order(std::size_t chunks, int start) {
  if (config_.meta.algorithm != config::Algorithm::kMaml || !config_.meta.first_order_fallback ||
      !device_.is_cpu())
    return;
  // Every rank measures its own share and the group decides alike: a rank that cannot measure
  // still joins the decision (false), so no collective is left unmatched.
  std::string figures;
  bool too_big = false, already_over = false;
  [&] {
    const std::vector<meta::TaskBatch> batches = prepare_batches(start);
    if (batches.empty()) return;
    // Where the kernel refuses the reset, the peak since start stands in: it can only
    // overstate the step, so the fallback errs towards first order.
    const bool since_reset = runtime::reset_peak_resident_memory();
    const auto before = runtime::resident_memory();
    if (!before) return;
    // The measurement must leave the run as it was: no gradient, no random draw kept.
    auto generator = at::detail::getDefaultCPUGenerator();
    const auto random_state = generator.get_state();
    learner_->accumulate_meta_gradient({batches.front()});
    optimizer_.zero_grad();
    generator.set_state(random_state);
    const auto after = runtime::resident_memory();
    if (!after) return;
    constexpr double kMiB = 1024.0 * 1024.0;
    const std::int64_t one = std::max<std::int64_t>(0, after->peak_bytes - before->current_bytes);
    // Chunks run side by side; a chunk's stacks one after another, each graph freed before the
    // next.
    const std::size_t at_once = std::min(
        batches.size(), std::max<std::size_t>(1, chunks) * learner_->tasks_per_stack(batches));
    // Half again as margin: the stacked step holds more than its tasks' graphs one by one (on
    // Flipkart's trainable backbone, 8 tasks of 19.9 MiB each rose 223 MiB, not 159).
    constexpr double kMargin = 1.5;
    const auto predicted =
        before->current_bytes + static_cast<std::int64_t>(kMargin * static_cast<double>(one) *
                                                          static_cast<double>(at_once));
    std::int64_t limit = std::int64_t{config_.run.memory_limit_mib} * 1024 * 1024;
    std::string limit_source = "run.memory_limit_mib";
    if (limit == 0) {
      const auto available = runtime::available_memory_bytes();
      if (!available) return;
      limit = before->current_bytes + *available;
      limit_source = "what the machine had available";
    }
    too_big = predicted > limit;
    already_over = before->current_bytes >= limit;
    figures = fmt::format(
        "a second-order meta-step holding {} at once would take the process to about {:.0f} MiB "
        "(one task's graph{}: {:.1f} MiB, times 1.5 as margin), against {:.0f} MiB ({})",
        count_of(static_cast<long long>(at_once), "task"), static_cast<double>(predicted) / kMiB,
        since_reset ? "" : ", at most: the peak since start", static_cast<double>(one) / kMiB,
        static_cast<double>(limit) / kMiB, limit_source);
  }();
  if (group_) too_big = group_->all_max(too_big ? 1 : 0) > 0;
  if (figures.empty() && !too_big) return;  // nothing measured here, nothing to change
  if (figures.empty()) figures = "another rank's measurement";
  if (!too_big) {
    spdlog::info("memory: second order fits: {}", figures);
    return;
  }
  learner_->use_first_order();
  progress_.algorithm = enum_name(config::Algorithm::kFomaml);
  spdlog::warn(
      "memory: {}{}: meta-training first order instead (fomaml's meta-gradient, the same inner "
      "loop); set meta.first_order_fallback = false to keep second order{}",
      figures, group_ ? " on at least one rank" : "",
      already_over ? " (the process held more than the limit before the step)"
                   : ", or lower meta.meta_batch");
}

// Episodes are a pure function of the iteration, so this runs on a background thread for the
// next meta-batch while the current one trains. Under a process group every rank draws the
// whole meta-batch, as one process does, and builds the episodes of its share only.
std::vector<meta::TaskBatch> TrainingRun::prepare_batches(int it) const {
  return episodes_->meta_batch(static_cast<std::uint64_t>(it), share_.first, share_.second);
}

// One outer step; returns the meta-batch's query loss. NumericError when it is not finite.
double TrainingRun::meta_step(int it, std::vector<meta::TaskBatch> batches) {
  const auto step_start = std::chrono::steady_clock::now();
  optimizer_.zero_grad();
  double loss = learner_->accumulate_meta_gradient(batches);
  std::vector<meta::RowSparseGradient> sparse = learner_->row_sparse_gradients();
  if (group_) {
    const auto start = std::chrono::steady_clock::now();
    loss = reduce_meta_gradient(
        *group_, learner_->meta_parameters(), learner_->row_sparse_parameters(), sparse,
        share_.second - share_.first, static_cast<std::size_t>(config_.meta.meta_batch), loss,
        &gathered_bytes_);
    reduce_seconds_ += seconds_since(start);
  }
  // The advice for a diverged step: the learning rates (an explosion is the same failure as a
  // NaN, caught earlier), unless an input of the meta-batch is not finite: lower rates would not
  // help that.
  const auto advice = [&](const std::string& reason) {
    const std::string input = episodes_->non_finite_input(batches);
    if (!input.empty())
      return "meta-iteration " + std::to_string(it) + ": " + reason +
             "; its input is to blame: " + input;
    return "meta-iteration " + std::to_string(it) + ": " + reason + "; lower meta.outer_lr (" +
           short_number(config_.meta.outer_lr) + ") or meta.inner_lr (" +
           short_number(config_.meta.inner_lr) + "), or set meta.grad_clip";
  };
  if (!std::isfinite(loss)) throw NumericError(advice("the query loss is " + std::to_string(loss)));
  if (std::string why = run::divergence_reason(loss, loss_limit_, NAN); !why.empty())
    throw NumericError(advice(why));
  const double norm = optimizer_.step(std::move(sparse));
  if (std::string why = run::divergence_reason(loss, loss_limit_, norm); !why.empty())
    throw NumericError(advice(why));
  step_seconds_ += seconds_since(step_start);
  return loss;
}

void TrainingRun::log_collective_share(int iterations) const {
  if (!group_ || iterations <= 0) return;
  // Per meta-iteration: the flat dense gradient (float32), the head of flags and the loss
  // (float64) and the stop signal (int64); row-sparse tables add their touched rows.
  std::int64_t bytes = 8;
  std::int64_t dense = 0;
  const auto& row_sparse = learner_->row_sparse_parameters();
  const auto params = learner_->meta_parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i < row_sparse.size() && row_sparse[i]) continue;
    bytes += params[i].numel() * 4;
    ++dense;
  }
  bytes += (dense + 1) * 8;
  const double per = 1000.0 / iterations;
  spdlog::info(
      "data-parallel: a meta-iteration took {:.2f} ms, {:.2f} ms of it in collectives (waiting "
      "for the slowest rank included) and {:.2f} ms computing; it all-reduces {} bytes{} over "
      "{} ranks",
      (step_seconds_ + signal_seconds_) * per, (reduce_seconds_ + signal_seconds_) * per,
      (step_seconds_ - reduce_seconds_) * per, bytes,
      std::any_of(row_sparse.begin(), row_sparse.end(), [](bool table) { return table; })
          ? fmt::format(" and each rank all-gathers {} bytes of its tables' touched rows",
                        gathered_bytes_ / iterations)
          : "",
      group_->size());
}

void TrainingRun::warn_if_the_backbone_gets_no_gradient() const {
  if (!config_.model.backbone.trainable) return;
  const auto params = learner_->model()->params();
  const auto& groups = learner_->model()->groups();
  for (std::size_t i = 0; i < params.size(); ++i)
    if (groups[i] == models::ParamGroup::kBackbone && params[i].grad().defined() &&
        params[i].grad().abs().sum().item<double>() > 0)
      return;
  spdlog::warn(
      "model.backbone.trainable = true, but the first meta-step gave none of the backbone's "
      "weights a gradient (its output does not depend on them: detached?); it will not train");
}

void TrainingRun::log_meta_step_memory(const runtime::ResidentMemory& before) const {
  const auto after = runtime::resident_memory();
  if (!after) return;
  constexpr double kMiB = 1024.0 * 1024.0;
  double weights = 0;
  for (const auto& p : learner_->meta_parameters())
    weights += static_cast<double>(p.numel() * p.element_size());
  const double rise =
      static_cast<double>(std::max<std::int64_t>(0, after->peak_bytes - before.current_bytes));
  // Memory that earlier work (the start-up timing of task workers) freed is reused without the
  // resident size growing, so the rise can understate the step's own need: the peak is said too.
  spdlog::info(
      "memory: the first meta-step ({} tasks{}, {}) peaked at {:.0f} MiB resident, {:.1f} MiB "
      "above the {:.0f} MiB before it (memory freed by earlier work is reused, so the rise can "
      "be smaller than the step's need); the meta-learned weights are {}",
      share_.second - share_.first,
      group_ ? fmt::format(" of {} on this rank", config_.meta.meta_batch) : std::string(),
      enum_name(learner_->algorithm()), static_cast<double>(after->peak_bytes) / kMiB, rise / kMiB,
      static_cast<double>(before.current_bytes) / kMiB,
      weights < kMiB ? fmt::format("{:.1f} KiB", weights / 1024)
                     : fmt::format("{:.1f} MiB", weights / kMiB));
}

// Marks the run (run/divergence.hpp) and stops it at step `iteration` (0-based, as the messages
// count); its checkpoints stay as they were, all from before that step.
void TrainingRun::stop_diverged(int iteration, const std::string& message) {
  if (!writes_) throw NumericError(message);
  std::error_code ec;
  const fs::path latest = layout_.latest_checkpoint();
  // Without a checkpoint there is nothing to refuse (and a fresh run leaves nothing).
  if (!fs::exists(latest, ec)) throw NumericError(message);
  run::Divergence d;
  d.iteration = iteration;
  d.reason = message;
  d.checkpoint = run::read_checkpoint_meta(latest.string()).progress.value("iteration", -1);
  run::write_divergence(layout_, d);
  throw NumericError(message + "; marked diverged in '" + layout_.divergence().string() +
                     "' (its checkpoint, from iteration " + std::to_string(d.checkpoint) +
                     ", will not be used)");
}

// After the step in progress: saves the latest checkpoint, so no finished meta-iteration is
// lost, and stops with the signal's exit code.
void TrainingRun::stop_interrupted(int signal, int total, bool saved) {
  if (!saved) save(layout_.latest_checkpoint());
  // A rank other than 0 writes nothing: the group's checkpoint is in rank 0's run folder.
  throw InterruptedError(
      signal, "interrupted (" + signal_name(signal) + ") at meta-iteration " +
                  std::to_string(progress_.iteration) + " of " + std::to_string(total) + ": " +
                  (writes_ ? "saved '" + layout_.latest_checkpoint().string() + "'"
                           : std::string("rank 0 saved the group's checkpoint")) +
                  "; continue with --resume");
}

TrainSummary TrainingRun::summary() const {
  TrainSummary s;
  s.run_dir = layout_.dir.string();
  s.algorithm = enum_name(learner_->algorithm());  // fomaml where maml fell back
  s.iterations = progress_.iteration;
  s.last_loss = progress_.last_loss;
  s.selection_metric = metric_;
  s.best_validation = progress_.best_validation;
  s.best_iteration = progress_.best_iteration;
  return s;
}

TrainSummary TrainingRun::train(int stop_after) {
  const int start = progress_.iteration;
  const int total = learner_->trains() ? config_.meta.iterations : 0;
  seconds_before_ = progress_.seconds;
  if (writes_) {
    if (resumed_) keep_metrics_through(layout_.metrics(), start);
    metrics_.open(layout_.metrics(), resumed_ ? std::ios::app : std::ios::trunc);
    if (!metrics_)
      throw IoError("cannot write '" + layout_.metrics().string() + "': " + std::strerror(errno));
  }
  // Every rank starts from the same weights (the seeded initialisation, or the checkpoint).
  if (group_) check_same_weights(*group_, learner_->meta_parameters(), start);
  const int stop = stop_after > 0 ? std::min(total, start + stop_after) : total;
  plan_threads(start, stop);
  // The validation an interrupt cut short comes first; the final one (start == total) is done
  // below, where the uninterrupted run does it.
  if (progress_.validation_pending && start < total && !run_validation())
    stop_interrupted(agreed_signal(), total, false);
  Progress progress("meta-training " + enum_name(learner_->algorithm()), "iterations", total);
  std::future<std::vector<meta::TaskBatch>> next;
  auto prepare = [this](int it) { return prepare_batches(it); };
  if (start < stop) next = std::async(std::launch::async, prepare, start);
  for (int it = start; it < stop; ++it) {
    std::vector<meta::TaskBatch> batches = next.get();
    if (it + 1 < stop) next = std::async(std::launch::async, prepare, it + 1);
    double loss = NAN;
    const bool first = it == start;
    std::optional<runtime::ResidentMemory> before;
    if (first && runtime::reset_peak_resident_memory()) before = runtime::resident_memory();
    try {
      loss = meta_step(it, std::move(batches));
    } catch (const NumericError& e) {
      stop_diverged(it, e.what());
    }
    if (before) log_meta_step_memory(*before);
    if (first) warn_if_the_backbone_gets_no_gradient();
    progress_.window_loss_sum += loss;
    ++progress_.window_iterations;
    const int done = it + 1;
    progress_.iteration = done;
    if (done % config_.train.log_every == 0 || done == total) {
      progress_.last_loss = progress_.window_loss_sum / progress_.window_iterations;
      log_metrics({{"iteration", done}, {"loss", progress_.last_loss}, {"seconds", seconds()}});
      progress_.window_loss_sum = 0;
      progress_.window_iterations = 0;
    }
    if (config_.train.validate_every > 0 && done % config_.train.validate_every == 0 &&
        done != total)
      run_validation();
    const bool saved = done % config_.train.checkpoint_every == 0 && done != stop;
    if (saved) save(layout_.latest_checkpoint());
    progress.update(done);
    if (const int signal = agreed_signal(); signal != 0 && done != stop)
      stop_interrupted(signal, total, saved);
  }
  progress.finish();
  log_collective_share(stop - start);
  progress_.iteration = stop;
  if (stop == total) run_validation();
  // Cut short here or at the last iteration of a --stop-after call: saved as pending.
  if (progress_.validation_pending) stop_interrupted(agreed_signal(), total, false);
  // Without a validation score the last weights are the best we know, in every call.
  const bool chosen_by_validation = std::isfinite(progress_.best_validation);
  if (!chosen_by_validation) progress_.best_iteration = stop;
  save(layout_.latest_checkpoint());
  // Written like every checkpoint (a copy could be cut off half-way).
  if (!chosen_by_validation) save(layout_.best_checkpoint());
  if (stop < total)
    spdlog::info(
        "stopped at meta-iteration {} of {} (--stop-after {}): saved '{}'; continue with "
        "--resume",
        stop, total, stop_after, layout_.latest_checkpoint().string());
  return summary();
}

}  // namespace

TrainSummary run_training(const config::Config& config, const TrainOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  runtime::ThreadBudget budget = runtime::configure_compute(config.run.threads);
  const torch::Device device = runtime::torch_device(config.run.device);
  const run::RunLayout layout(config.run.dir);
  nlohmann::json resolved;
  to_json(resolved, config);
  runtime::ProcessGroup* const group = options.group;
  // One process, or rank 0 of a group: the run folder is written by one process only.
  const bool writes = group == nullptr || group->rank() == 0;
  // Runs a step of setting up on every rank; under a group, a failure on one rank stops all.
  auto together = [&](const std::string& what, const std::function<void()>& step) {
    if (group)
      group->together(what, step);
    else
      step();
  };
  if (group) {
    check_same_run(*group, config);
    group->require_same("train options",
                        {{"resume", options.resume}, {"stop_after", options.stop_after}},
                        "every rank of a launch needs the same train options");
    together("checking its device", [&] {
      if (device.is_cuda())
        throw NotImplementedError("run.device = \"" + config.run.device.name() +
                                  "\" under torchrun: data-parallel training runs on CPU (Gloo) "
                                  "for now; set run.device = \"cpu\"");
    });
    runtime::WorkShare(group).share_cores(budget);
  }

  run::Checkpoint resume_from;
  std::optional<TrainSummary> finished;
  std::optional<FreshRunCleanup> cleanup;
  std::optional<ScopedLogFile> log_file;
  std::string resume_bytes;
  together("setting up the run folder", [&] {
    if (!writes) return;
    check_run_dir(layout, options.resume);
    // What a killed call (kill -9, a second Ctrl-C) left half-written.
    for (const fs::path& dir : {layout.dir, layout.checkpoints()})
      if (const int n = remove_stale_temporaries(dir.string()))
        spdlog::info("removed {} temporary file(s) a killed run left in {}", n, dir.string());
    if (options.resume)
      resume_bytes = run::read_checkpoint_file(layout.latest_checkpoint().string());
  });
  // Rank 0 reads the group's checkpoint and sends it to the others, so that their hosts need
  // no copy of the run folder.
  // Messages about it name rank 0's file, wherever this rank is.
  std::string resume_path = layout.latest_checkpoint().string();
  if (group && options.resume) {
    group->broadcast_bytes(resume_bytes);
    group->broadcast_bytes(resume_path);
  }
  together("reading the checkpoint to resume", [&] {
    if (options.resume) {
      resume_from = load_resume_checkpoint(layout, resolved, resume_path, std::move(resume_bytes));
      // Before anything is written: resuming a finished run changes nothing.
      finished = finished_run_summary(config, layout, resume_from.meta.progress);
      if (finished) return;
    }
    if (!writes) return;
    if (!options.resume) cleanup.emplace(layout);
    create_run_folders(layout);
    if (!options.resume) {
      // Left by an earlier fresh run that stopped before its first checkpoint and could not
      // clean up (killed): this run's train.log holds its own lines only.
      std::error_code ec;
      for (const fs::path& p : {layout.train_log(), layout.divergence()}) fs::remove(p, ec);
    }
    log_file.emplace(layout.train_log().string());
    write_file_atomically(layout.config().string(),
                          [&](std::ostream& out) { out << resolved.dump(2) << "\n"; });
  });
  if (finished) {
    finished->seconds = seconds_since(start_time);
    return *finished;
  }
  if (group) {
    const auto [begin, end] = runtime::share_of(static_cast<std::size_t>(config.meta.meta_batch),
                                                group->rank(), group->size());
    spdlog::info("data-parallel: rank {} of {}, computing tasks {}..{} of each meta-batch of {}",
                 group->rank(), group->size(), begin, end - 1, config.meta.meta_batch);
  }

  std::unique_ptr<EpisodeSource> data;
  together("preparing the data", [&] {
    data = prepare_training_data(config, options.resume ? &resume_from : nullptr, device);
  });
  TrainingRun training(config, layout, resolved, std::move(data), device, budget, start_time,
                       group);
  if (options.resume) training.resume(resume_from);
  TrainSummary summary = training.train(options.stop_after);
  summary.seconds = seconds_since(start_time);
  return summary;
}

}  // namespace ml::train
