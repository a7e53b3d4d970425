// The cold-start protocol: see cold_start.hpp.
#include "eval/cold_start.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "meta/meta_learner.hpp"
#include "metrics/metrics.hpp"
#include "models/query_metrics.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/training_progress.hpp"
#include "runtime/device.hpp"
#include "tasks/episode_sampler.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"
#include "util/progress.hpp"
#include "util/strings.hpp"

namespace ml::eval {

namespace fs = std::filesystem;

namespace {

// kEvalEpisodeBase (cold_start.hpp) keeps evaluation episodes far from training (iteration *
// 1000003 + j) and validation (2^40 + e) ones. New tasks are never trained on, so this is only
// for clarity in logs and debugging: the indices, not the method, decide the episodes, which
// makes the comparison paired.
constexpr std::size_t kRankingCutoff = 5;
constexpr double kLevel = 0.95;

// The RecBole-MetaRec ranking variant's metric names (see metrics::top_k_label_relevance).
const std::string kTopLabelSuffix = "_top_labels";

std::vector<MetricInfo> top_label_metrics() {
  const std::string k = std::to_string(kRankingCutoff);
  return {{"precision@" + k + kTopLabelSuffix, "P@" + k + " (top labels)", true},
          {"ndcg@" + k + kTopLabelSuffix, "NDCG@" + k + " (top labels)", true},
          {"mrr@" + k + kTopLabelSuffix, "MRR@" + k + " (top labels)", true}};
}

std::vector<MetricInfo> metrics_for(tasks::LabelKind kind, bool has_users, bool top_labels) {
  switch (kind) {
    case tasks::LabelKind::kBinary: {
      std::vector<MetricInfo> m{
          {"auc", "AUC", true}, {"log_loss", "log loss", false}, {"accuracy", "accuracy", true}};
      if (has_users) {
        const std::string k = std::to_string(kRankingCutoff);
        m.push_back({"precision@" + k, "P@" + k, true});
        m.push_back({"ndcg@" + k, "NDCG@" + k, true});
        m.push_back({"mrr@" + k, "MRR@" + k, true});
        if (top_labels)
          for (auto& x : top_label_metrics()) m.push_back(x);
      }
      return m;
    }
    case tasks::LabelKind::kRegression: {
      std::vector<MetricInfo> m{{"rmse", "RMSE", false}, {"mae", "MAE", false}};
      if (has_users && top_labels)
        for (auto& x : top_label_metrics()) m.push_back(x);
      return m;
    }
    case tasks::LabelKind::kMulticlass:
      return {{"accuracy", "accuracy", true}};
  }
  return {};
}

// One episode's metric values in `infos` order (NaN where undefined, e.g. ranking without a user
// holding both a bought and a not-bought query row), and which of them the query's composition
// fixes (the same for every scoring; metrics::RankingMetrics).
struct EpisodeValues {
  std::vector<double> values;
  std::vector<bool> fixed;

  void set_ranking(std::size_t at, const metrics::RankingMetrics& r) {
    values[at] = r.precision;
    values[at + 1] = r.ndcg;
    values[at + 2] = r.mrr;
    fixed[at] = r.precision_fixed;
    fixed[at + 1] = r.ndcg_fixed;
    fixed[at + 2] = r.mrr_fixed;
  }
};

// `users` holds the query rows' user ids.
EpisodeValues episode_metrics(tasks::LabelKind kind, const std::vector<MetricInfo>& infos,
                              const torch::Tensor& outputs, const models::Batch& query,
                              const std::vector<std::int64_t>& users) {
  EpisodeValues out{std::vector<double>(infos.size(), NAN), std::vector<bool>(infos.size(), false)};
  std::vector<double>& values = out.values;
  const metrics::QueryMetrics query_values = models::query_metrics(outputs, query.target, kind);
  if (kind == tasks::LabelKind::kMulticlass) {
    values[0] = query_values.accuracy;
    return out;
  }
  const std::vector<float> scores = models::to_floats(outputs.select(1, 0));
  const std::vector<float> labels = models::to_floats(query.target);
  const std::size_t top_labels_at =
      infos.size() >= 3 && infos[infos.size() - 3].name.find(kTopLabelSuffix) != std::string::npos
          ? infos.size() - 3
          : infos.size();
  if (top_labels_at < infos.size()) {
    // Every user counts here (RecBole-MetaRec averages over all of them).
    std::vector<float> s, y;
    std::vector<std::int64_t> g;
    for (std::size_t i = 0; i < users.size(); ++i)
      if (users[i] != data::kNoId) {
        s.push_back(scores[i]);
        y.push_back(labels[i]);
        g.push_back(users[i]);
      }
    if (!g.empty())
      out.set_ranking(top_labels_at, metrics::ranking_metrics_by_group(
                                         s, metrics::top_k_label_relevance(y, g, kRankingCutoff), g,
                                         kRankingCutoff));
  }
  if (kind == tasks::LabelKind::kRegression) {
    values[0] = query_values.rmse;
    values[1] = query_values.mae;
    return out;
  }
  values[0] = query_values.auc;
  values[1] = query_values.log_loss;
  values[2] = query_values.accuracy;
  if (infos.size() > 3 && top_labels_at > 3) {
    // Only users with both a bought and a not-bought query row: any order of a list that is all
    // relevant (or has one row) scores the same, so such lists say nothing about the ranking.
    std::map<std::int64_t, std::pair<int, int>> counts;
    for (std::size_t i = 0; i < users.size(); ++i)
      if (users[i] != data::kNoId)
        (labels[i] > 0.5f ? counts[users[i]].first : counts[users[i]].second)++;
    std::vector<float> s, y;
    std::vector<std::int64_t> g;
    for (std::size_t i = 0; i < users.size(); ++i) {
      auto it = counts.find(users[i]);
      if (it == counts.end() || it->second.first == 0 || it->second.second == 0) continue;
      s.push_back(scores[i]);
      y.push_back(labels[i]);
      g.push_back(users[i]);
    }
    if (!g.empty()) out.set_ranking(3, metrics::ranking_metrics_by_group(s, y, g, kRankingCutoff));
  }
  return out;
}

// A multiclass task's eligible classes were counted for the config's K; a larger K needs every
// one of them to hold K + Q examples, since an episode may draw any of them.
tasks::DropReason multiclass_check(const tasks::Task& task, int k, int q) {
  std::map<std::int32_t, int> counts;
  for (const auto& e : task.examples) ++counts[static_cast<std::int32_t>(e.label)];
  for (std::int32_t c : task.eligible_classes)
    if (counts[c] < k + q)
      return {tasks::DropCause::kTooFewExamples,
              "class " + std::to_string(c) + " has " + std::to_string(counts[c]) +
                  " examples, need support + query = " + std::to_string(k + q)};
  return {};
}

struct MethodLearner {
  std::string name;
  config::Config config;  // the config its learner was built with
  std::unique_ptr<meta::MetaLearner> owned;
  meta::MetaLearner* learner = nullptr;
  const pipeline::RunData* data = nullptr;  // the run's data: its own features and encoding
};

// The sections that decide which tasks and episodes exist: runs compared on one set of
// episodes must agree on them.
constexpr const char* kEpisodeSections[] = {"seed", "data", "task", "split"};

void check_same_episodes(const run::LoadedRun& first, const run::LoadedRun& other) {
  config::Json a, b;
  to_json(a, first.config);
  to_json(b, other.config);
  for (const char* section : kEpisodeSections) {
    if (a[section] == b[section]) continue;
    const config::Json diff = config::Json::diff(a[section], b[section]);
    std::string where = std::string(section);
    std::string detail;
    if (!diff.empty()) {
      const std::string pointer = diff.front().value("path", "");
      where += pointer;
      for (char& c : where)
        if (c == '/') c = '.';
      const config::Json::json_pointer ptr(pointer);
      auto value_at = [&](const config::Json& j) {
        return j[section].contains(ptr) ? j[section].at(ptr).dump() : std::string("(absent)");
      };
      detail = " (" + value_at(a) + " there, " + value_at(b) + " here)";
    }
    throw ConfigError("eval: '" + other.checkpoint_path + "' differs from '" +
                      first.checkpoint_path + "' at " + where + detail +
                      ": runs evaluated together must share seed, data, task and split, so "
                      "that every method sees the same tasks and episodes");
  }
}

config::Config with_algorithm(const config::Config& base, config::Algorithm algorithm,
                              const std::string& run_dir, int threads) {
  config::Json j;
  to_json(j, base);
  j["meta"]["algorithm"] = enum_name(algorithm);
  j["run"]["dir"] = run_dir;
  j["run"]["threads"] = threads;
  return config::config_from_json(j);
}

config::Json without_run_section(config::Json j) {
  j.erase("run");
  return j;
}

// The pretrain baseline: reused from RUN/baselines/pretrain, resumed there when it stopped early,
// or trained there with the run's config and budget. The budget is the iterations the run's own
// latest checkpoint reached, so a run stopped early (train --stop-after) meets a baseline stopped
// at the same point.
std::unique_ptr<meta::MetaLearner> pretrain_learner(const run::LoadedRun& run,
                                                    const fs::path& run_dir,
                                                    const config::Config& pc,
                                                    const torch::Device& device,
                                                    ColdStartResult& result) {
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
    if (without_run_section(meta.config) != without_run_section(expected))
      throw CheckpointError(
          "'" + latest.string() + "' was trained with another config than the run's (diff: " +
          config::Json::diff(without_run_section(meta.config), without_run_section(expected))
              .dump() +
          "); delete '" + dir.string() + "' to retrain the pretrain baseline");
    done = meta.progress.get<run::TrainingProgress>().iteration;
    if (done >= budget) {
      spdlog::info("reusing the pretrain baseline in {} ({} iterations)", dir.string(), done);
      if (done > budget)
        spdlog::warn("the pretrain baseline in {} had {} iterations, the run {}", dir.string(),
                     done, budget);
      result.pretrain_source = "reused";
      train_now = false;
    } else {
      spdlog::info("resuming the pretrain baseline in {} at iteration {} of {}", dir.string(), done,
                   budget);
      result.pretrain_source = "resumed";
      train_options.resume = true;
    }
  } else {
    spdlog::info(
        "training the pretrain baseline in-process into {} (same tasks, episodes and budget: {} "
        "iterations of {} tasks); later evals reuse it, --no-pretrain skips it",
        dir.string(), budget, pc.meta.meta_batch);
    result.pretrain_source = "trained";
  }
  if (budget < pc.meta.iterations) train_options.stop_after = budget - done;
  if (train_now) train::run_training(pc, train_options);

  // The same selection as the run itself: its checkpoint file name when the baseline has one,
  // else best, else latest.
  const fs::path same = baseline.checkpoints() / fs::path(run.checkpoint_path).filename();
  const std::string file =
      fs::exists(same) ? same.string() : run::resolve_checkpoint_path(dir.string());
  run::Checkpoint checkpoint = run::load_checkpoint(file);
  const run::CheckpointMeta run_meta = run::read_checkpoint_meta(run.checkpoint_path);
  if (checkpoint.meta.features != run_meta.features)
    throw CheckpointError("'" + file + "' was fitted on other feature statistics than '" +
                          run.checkpoint_path + "' (the log changed since the run was trained?); " +
                          "delete '" + dir.string() + "' to retrain the pretrain baseline");
  auto learner = run::build_learner(pc, run.data->features, device);
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) { run::read_learner(archive, *learner, file); },
      device);
  result.pretrain_checkpoint = file;
  return learner;
}

std::vector<int> sorted_unique(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

void check_options(const ColdStartOptions& o) {
  if (o.shots.empty()) throw UsageError("--shots: give at least one support size");
  if (o.steps.empty()) throw UsageError("--steps: give at least one step count");
  for (int k : o.shots)
    if (k < 1) throw UsageError("--shots " + std::to_string(k) + ": must be >= 1");
  for (int s : o.steps)
    if (s < 0) throw UsageError("--steps " + std::to_string(s) + ": must be >= 0");
  if (o.episodes < 1)
    throw UsageError("--episodes " + std::to_string(o.episodes) + ": must be >= 1");
  if (o.threads < 0) throw UsageError("--threads " + std::to_string(o.threads) + ": must be >= 0");
  if (o.task_role != "new" && o.task_role != "validation")
    throw UsageError("--tasks " + o.task_role + ": must be new or validation");
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// `run_methods` are the runs' method names (first run first); the baselines follow unless a run
// already is one.
std::vector<std::string> choose_methods(const ColdStartOptions& o,
                                        const std::vector<std::string>& run_methods) {
  std::vector<std::string> available = run_methods;
  const std::string pretrain = enum_name(config::Algorithm::kPretrain);
  for (const std::string& b : config::baseline_names())
    if (!contains(available, b)) available.push_back(b);
  const std::string offered = o.compare.empty() ? "this run offers " : "these runs offer ";
  for (const auto& m : o.methods)
    if (!contains(available, m))
      throw UsageError("--methods " + m + ": " + offered + join(available, ", "));
  const bool pretrain_is_a_run = contains(run_methods, pretrain);
  if (!o.pretrain && contains(o.methods, pretrain) && !pretrain_is_a_run)
    throw UsageError("--no-pretrain contradicts --methods pretrain");
  std::vector<std::string> chosen;
  for (const auto& m : available) {
    if (!o.methods.empty() && !contains(o.methods, m)) continue;
    if (!o.pretrain && m == pretrain && !pretrain_is_a_run) continue;
    chosen.push_back(m);
  }
  if (chosen.empty()) throw UsageError("--methods: no method left to evaluate");
  return chosen;
}

bool is_baseline(const std::string& method) {
  return config::is_baseline_name(method);
}

std::string join_ints(const std::vector<int>& v) {
  std::vector<std::string> parts;
  for (int x : v) parts.push_back(std::to_string(x));
  return join(parts, ",");
}

std::string model_text(const config::ModelConfig& m) {
  std::vector<std::string> widths;
  for (int h : m.hidden) widths.push_back(std::to_string(h));
  std::string text = enum_name(m.type) + " " + join(widths, "-");
  if (m.type == config::ModelType::kEmbeddingMlp)
    text += ", embeddings " + std::to_string(m.embedding_dim);
  return text;
}

RunSummary summarize_run(const run::LoadedRun& run) {
  const config::Config& c = run.config;
  const pipeline::RunData& data = *run.data;
  RunSummary s;
  s.data_files = c.data.files;
  const config::ColumnRef& task = c.data.columns.task;
  s.task_column = task.name.empty() ? task.describe() : task.name;
  s.label = enum_name(c.task.label.kind);
  s.time_cutoff = c.split.time_cutoff;
  s.rows_read = data.report.rows_read;
  s.rows_rejected = data.report.rows_rejected;
  s.rows_kept = static_cast<std::int64_t>(data.log.size());
  s.users = static_cast<std::int64_t>(data.log.users.size());
  s.items = static_cast<std::int64_t>(data.log.items.size());
  s.tasks = static_cast<int>(data.tasks.tasks.size());
  s.train_tasks = static_cast<int>(data.tasks.with_role(tasks::TaskRole::kTrain).size());
  s.validation_tasks = static_cast<int>(data.tasks.with_role(tasks::TaskRole::kValidation).size());
  std::vector<tasks::DropCause> dropped;
  for (const tasks::Task* t : data.tasks.with_role(tasks::TaskRole::kDropped))
    dropped.push_back(t->drop_cause);
  s.dropped_tasks = static_cast<int>(dropped.size());
  s.dropped_by_cause = tasks::count_drop_causes(dropped);
  s.support = c.task.support;
  s.model = model_text(c.model);
  s.meta_iterations = c.meta.iterations;
  s.trained_iterations = run.training.iteration;
  s.inner_steps = c.meta.inner_steps;
  s.inner_lr = c.meta.inner_lr;
  s.inner_params = enum_name(c.meta.inner_params);
  return s;
}

bool better(double a, double b, bool higher_is_better) {
  return higher_is_better ? a > b : a < b;
}

// The best cell at K by the primary metric among the runs' own methods (not the baselines).
const Cell* best_learner_cell(const ColdStartResult& r, int k) {
  return best_cell_where(r, k, 0, [](const Cell& c) { return !is_baseline(c.method); });
}

metrics::Interval paired(const Cell& a, const Cell& b) {
  std::vector<double> x, y;
  for (const auto& t : a.metrics.front().per_task) x.push_back(t.value);
  for (const auto& t : b.metrics.front().per_task) y.push_back(t.value);
  return metrics::paired_difference_ci(x, y, kLevel);
}

std::string signed_fixed(double v, int digits) {
  return (v >= 0 ? "+" : "") + fixed(v, digits);
}

std::string steps_text(int steps) {
  return std::to_string(steps) + (steps == 1 ? " step" : " steps");
}

Verdict make_verdict(const ColdStartResult& r, int k) {
  Verdict v;
  v.shots = k;
  const MetricInfo& primary = r.metrics.front();
  const std::string at = "K=" + std::to_string(k) + ": ";
  const Cell* best = best_cell(r, k);
  if (!best) {
    v.text = at + "no " + r.task_role + " task could give an episode";
    return v;
  }
  v.best_method = best->method;
  v.best_steps = best->steps;
  v.best_value = best->metrics.front().interval;
  auto has = [&](const std::string& m) { return contains(r.methods, m); };
  const bool baseline_won = is_baseline(best->method);
  // When a baseline wins, the best of the runs' own methods is measured against it (a run that
  // is itself a baseline counts as that baseline).
  const Cell* best_learner = best_learner_cell(r, k);
  const Cell* compared = nullptr;
  const Cell* against = nullptr;
  if (baseline_won && best->method != r.algorithm && best_learner) {
    compared = best_learner;
    against = best;
  } else {
    compared = best;
    for (const std::string& b : config::baseline_names())
      if (!against && has(b) && best->method != b) against = best_cell(r, k, 0, b);
  }
  const std::string name = baseline_won && best->method != r.algorithm
                               ? "the " + best->method + " baseline"
                               : best->method;
  v.text = at + "best is " + name + " with " + steps_text(best->steps) + ", " + primary.title +
           " " + metrics::format_interval(v.best_value, 3);
  if (!compared || !against) {
    v.text += " (nothing to compare it with)";
    return v;
  }
  v.compared_method = compared->method;
  v.compared_steps = compared->steps;
  v.against_method = against->method;
  v.against_steps = against->steps;
  v.difference = paired(*compared, *against);
  const auto& d = v.difference;
  if (d.n == 0) {
    v.text += "; no task scored both " + compared->method + " and " + against->method;
    return v;
  }
  std::string diff = signed_fixed(d.mean, 3);
  if (std::isfinite(d.half_width))
    diff += " [" + signed_fixed(d.lower, 3) + ", " + signed_fixed(d.upper, 3) + "]";
  v.excludes_zero = std::isfinite(d.half_width) && (d.lower > 0 || d.upper < 0);
  const bool compared_better = (d.mean > 0) == primary.higher_is_better;
  v.text += "; " + compared->method + " (" + steps_text(compared->steps) + ") vs " +
            against->method + " at its best (" + steps_text(against->steps) + "): " + diff;
  if (!std::isfinite(d.half_width))
    v.text += ", too few tasks for an interval";
  else if (v.excludes_zero)
    v.text += ", the 95% CI excludes 0: " + compared->method + " is significantly " +
              (compared_better ? "better" : "worse");
  else
    v.text += ", the 95% CI includes 0: no significant difference";
  return v;
}

// The runs evaluated together: the first (whose held-out tasks are evaluated) and the compared
// ones, all checked to be meta-training runs that share the episodes.
struct EvaluatedRuns {
  run::LoadedRun first;
  std::vector<run::LoadedRun> others;

  std::vector<const run::LoadedRun*> all() const {
    std::vector<const run::LoadedRun*> runs{&first};
    for (const auto& o : others) runs.push_back(&o);
    return runs;
  }
};

run::LoadedRun load_meta_run(const std::string& path, const ColdStartOptions& options,
                             const std::string& needed) {
  run::LoadedRun run = run::load_run(path, {}, options.device, options.threads);
  if (run.kind != run::kCheckpointKindMeta)
    throw CheckpointError("'" + run.checkpoint_path + "' holds a model of kind '" + run.kind +
                          "' (adapted to one task); eval needs " + needed);
  return run;
}

// The compared runs are checked before anything expensive: the same tasks and episodes or none.
EvaluatedRuns load_evaluated_runs(const ColdStartOptions& options) {
  EvaluatedRuns runs{load_meta_run(options.checkpoint, options, "a meta-training run"), {}};
  for (const auto& path : options.compare) {
    runs.others.push_back(load_meta_run(path, options, "a run"));
    check_same_episodes(runs.first, runs.others.back());
  }
  return runs;
}

// What the result says about the first run and the grid, before any episode.
void describe_run(const run::LoadedRun& run, const ColdStartOptions& options,
                  ColdStartResult& result) {
  const config::Config& config = run.config;
  const tasks::LabelKind kind = run.data->tasks.kind;
  result.checkpoint_path = run.checkpoint_path;
  const run::RunLayout layout(run::run_dir_of(run.checkpoint_path));
  result.run_dir = layout.dir.string();
  if (fs::exists(layout.config())) result.config_path = layout.config().string();
  result.algorithm = enum_name(config.meta.algorithm);
  result.task_role = options.task_role;
  result.label_kind = tasks::label_kind_name(kind);
  result.metrics = metrics_for(kind, !config.data.columns.user.empty(), options.top_label_ranking);
  result.shots = sorted_unique(options.shots);
  result.steps = sorted_unique(options.steps);
  result.episodes = options.episodes;
  result.query = config.task.query;
  result.run = summarize_run(run);
}

// Each run's method name (its algorithm; ALGORITHM@RUN_DIR or ALGORITHM#N when two share one),
// in `runs` order, recorded in result.runs.
std::vector<std::string> name_runs(const std::vector<const run::LoadedRun*>& runs,
                                   ColdStartResult& result) {
  std::vector<std::string> run_methods;
  for (const run::LoadedRun* r : runs) {
    const std::string algorithm = enum_name(r->config.meta.algorithm);
    std::string name = algorithm;
    if (contains(run_methods, name))
      name += "@" + run::run_dir_of(r->checkpoint_path).filename().string();
    for (int n = 2; contains(run_methods, name); ++n) name = algorithm + "#" + std::to_string(n);
    run_methods.push_back(name);
    result.runs.push_back(
        {name, algorithm, r->checkpoint_path, run::run_dir_of(r->checkpoint_path).string()});
  }
  return run_methods;
}

// The first run's held-out tasks of the asked role; DataError when there are none, or when a
// compared run holds one of them with other examples (one episode's indices must mean the same
// rows to every method).
std::vector<const tasks::Task*> held_out_tasks(const EvaluatedRuns& runs,
                                               const std::string& task_role) {
  const run::LoadedRun& run = runs.first;
  const config::Config& config = run.config;
  const tasks::TaskRole role =
      task_role == "validation" ? tasks::TaskRole::kValidation : tasks::TaskRole::kNew;
  const auto new_tasks = run.data->tasks.with_role(role);
  if (new_tasks.empty()) {
    if (role == tasks::TaskRole::kValidation)
      throw DataError("'" + run.checkpoint_path +
                      "': the run holds out no validation task (split.validation_fraction = " +
                      std::to_string(config.split.validation_fraction) + " selected none)");
    throw DataError("'" + run.checkpoint_path +
                    "': the run holds out no new task (split.new_tasks is empty and "
                    "split.new_fraction = " +
                    std::to_string(config.split.new_fraction) + " selected none)");
  }
  for (const auto& o : runs.others)
    for (const tasks::Task* t : new_tasks) {
      const tasks::Task* same = o.data->tasks.find(t->name);
      if (!same || same->role != t->role || same->examples.size() != t->examples.size())
        throw DataError("eval: task '" + t->name + "' differs between '" + run.checkpoint_path +
                        "' and '" + o.checkpoint_path +
                        "' (another log or version?); they cannot share episodes");
    }
  return new_tasks;
}

// Which held-out tasks can give episodes at one K, and the sampler that draws them.
struct ShotPlan {
  std::vector<const tasks::Task*> eligible;
  tasks::EpisodeSampler sampler;
};

// One plan per K in result.shots (their tasks recorded in result.tasks); DataError when no task
// can give an episode at any K.
std::vector<ShotPlan> plan_episodes(const run::LoadedRun& run,
                                    const std::vector<const tasks::Task*>& new_tasks,
                                    const ColdStartOptions& options, ColdStartResult& result) {
  const config::Config& config = run.config;
  const tasks::LabelKind kind = run.data->tasks.kind;
  std::vector<ShotPlan> plans;
  std::size_t total_episodes = 0;
  for (int k : result.shots) {
    tasks::EpisodeShape shape = tasks::episode_shape(config.task);
    shape.support = k;
    ShotPlan plan{{}, tasks::EpisodeSampler(kind, shape, config.seed)};
    ShotTasks st;
    st.shots = k;
    for (const tasks::Task* t : new_tasks) {
      tasks::DropReason why = plan.sampler.diagnose(*t);
      if (why.cause == tasks::DropCause::kNone && kind == tasks::LabelKind::kMulticlass)
        why = multiclass_check(*t, k, config.task.query);
      if (why.cause == tasks::DropCause::kNone) {
        st.evaluated.push_back(t->name);
        plan.eligible.push_back(t);
      } else {
        st.skipped.push_back({t->name, why.text, why.cause});
      }
    }
    if (!st.skipped.empty())
      spdlog::warn("K={}: {} of {} {} tasks cannot give an episode and are skipped (e.g. '{}': {})",
                   k, st.skipped.size(), new_tasks.size(), options.task_role, st.skipped[0].task,
                   st.skipped[0].reason);
    total_episodes += plan.eligible.size() * static_cast<std::size_t>(options.episodes);
    result.tasks.push_back(std::move(st));
    plans.push_back(std::move(plan));
  }
  if (total_episodes == 0) {
    const auto& first = result.tasks.front().skipped.front();
    throw DataError("no " + options.task_role + " task can give an episode for --shots " +
                    join_ints(result.shots) +
                    " with task.query = " + std::to_string(config.task.query) + " (" +
                    std::to_string(new_tasks.size()) + " new tasks; e.g. '" + first.task +
                    "' at K=" + std::to_string(result.shots.front()) + ": " + first.reason +
                    "); ask for smaller --shots");
  }
  return plans;
}

// The learners of result.methods, each with the config it was built with: the runs' own, a
// scratch init, and the pretrain baseline (trained into RUN/baselines/pretrain if need be).
std::vector<MethodLearner> build_method_learners(const EvaluatedRuns& evaluated,
                                                 const std::vector<std::string>& run_methods,
                                                 const ColdStartOptions& options,
                                                 const torch::Device& device,
                                                 ColdStartResult& result) {
  const run::LoadedRun& run = evaluated.first;
  const config::Config& config = run.config;
  const pipeline::RunData& data = *run.data;
  const auto runs = evaluated.all();
  const run::RunLayout layout(result.run_dir);
  std::vector<MethodLearner> learners;
  for (const auto& m : result.methods) {
    MethodLearner entry;
    entry.name = m;
    entry.data = &data;
    const auto own = std::find(run_methods.begin(), run_methods.end(), m);
    if (own != run_methods.end()) {
      const run::LoadedRun& r = *runs[static_cast<std::size_t>(own - run_methods.begin())];
      entry.config = r.config;
      entry.learner = r.learner.get();
      entry.data = r.data.get();
      if (m == enum_name(config::Algorithm::kPretrain)) result.pretrain_source = "run";
    } else if (m == enum_name(config::Algorithm::kScratch)) {
      entry.config =
          with_algorithm(config, config::Algorithm::kScratch, config.run.dir, options.threads);
      entry.owned = run::build_learner(entry.config, data.features, device);
    } else {  // pretrain
      entry.config = with_algorithm(config, config::Algorithm::kPretrain,
                                    layout.pretrain_baseline().string(), options.threads);
      entry.config.run.device = runtime::parse_device(options.device);
      entry.owned = pretrain_learner(run, layout.dir, entry.config, device, result);
    }
    if (entry.owned) entry.learner = entry.owned.get();
    learners.push_back(std::move(entry));
  }
  return learners;
}

// Every method's cells at one K: each method adapts on the same sampled episodes, and the
// per-task means over episodes give each metric's interval over tasks.
void evaluate_shots(std::size_t ki, const ShotPlan& plan,
                    const std::vector<MethodLearner>& learners, const pipeline::RunData& data,
                    const ColdStartOptions& options, const torch::Device& device,
                    Progress& progress, std::size_t& done, ColdStartResult& result) {
  const tasks::LabelKind kind = data.tasks.kind;
  const std::size_t n_metrics = result.metrics.size();
  const std::size_t n_steps = result.steps.size();
  const auto& tasks_k = plan.eligible;
  // (sum, count) over episodes per method, step, metric and task.
  std::vector<std::pair<double, int>> sums(learners.size() * n_steps * n_metrics * tasks_k.size());
  auto slot = [&](std::size_t mi, std::size_t si, std::size_t x, std::size_t ti) -> auto& {
    return sums[((mi * n_steps + si) * n_metrics + x) * tasks_k.size() + ti];
  };
  std::vector<std::vector<int>> diverged(learners.size(), std::vector<int>(n_steps, 0));
  // Per metric: whether some episode gave it a value, and whether every one that did was fixed.
  std::vector<bool> seen(n_metrics, false), fixed(n_metrics, true);
  for (std::size_t ti = 0; ti < tasks_k.size(); ++ti) {
    for (int e = 0; e < options.episodes; ++e) {
      // Sampled once and shared by every method: the pairing is by construction.
      const tasks::Episode episode =
          plan.sampler.sample(*tasks_k[ti], kEvalEpisodeBase + static_cast<std::uint64_t>(e));
      // One encoding per distinct run data: the same rows, each run's own features.
      std::map<const pipeline::RunData*, meta::TaskBatch> batches;
      auto batch_for = [&](const pipeline::RunData* d) -> const meta::TaskBatch& {
        auto it = batches.find(d);
        if (it != batches.end()) return it->second;
        tasks::Episode same = episode;
        same.task = d == &data ? episode.task : d->tasks.find(episode.task->name);
        return batches.emplace(d, meta::make_task_batch(d->features, d->encoder, same, device))
            .first->second;
      };
      std::vector<std::int64_t> users;
      for (std::size_t i : episode.query) users.push_back(episode.task->examples[i].user);
      for (std::size_t mi = 0; mi < learners.size(); ++mi) {
        const meta::TaskBatch& batch = batch_for(learners[mi].data);
        auto outs =
            learners[mi].learner->outputs_at_steps(batch.support, batch.query, result.steps);
        for (std::size_t si = 0; si < n_steps; ++si) {
          if (!torch::isfinite(outs[si]).all().item<bool>()) {
            ++diverged[mi][si];
            continue;
          }
          const auto ev = episode_metrics(kind, result.metrics, outs[si], batch.query, users);
          for (std::size_t x = 0; x < n_metrics; ++x) {
            if (!std::isfinite(ev.values[x])) continue;
            slot(mi, si, x, ti).first += ev.values[x];
            slot(mi, si, x, ti).second += 1;
            seen[x] = true;
            fixed[x] = fixed[x] && ev.fixed[x];
          }
        }
      }
      progress.update(static_cast<double>(++done));
    }
  }
  for (std::size_t x = 0; x < n_metrics; ++x)
    if (seen[x] && fixed[x]) result.tasks[ki].fixed_by_query.push_back(result.metrics[x].name);
  for (std::size_t mi = 0; mi < learners.size(); ++mi) {
    for (std::size_t si = 0; si < n_steps; ++si) {
      Cell cell;
      cell.method = learners[mi].name;
      cell.shots = result.shots[ki];
      cell.steps = result.steps[si];
      cell.diverged_episodes = diverged[mi][si];
      for (std::size_t x = 0; x < n_metrics; ++x) {
        MetricResult mr;
        mr.metric = result.metrics[x].name;
        std::vector<double> values;
        for (std::size_t ti = 0; ti < tasks_k.size(); ++ti) {
          const auto& [sum, count] = slot(mi, si, x, ti);
          TaskValue tv{count > 0 ? sum / count : NAN, count};
          mr.per_task.push_back(tv);
          values.push_back(tv.value);
        }
        mr.interval = metrics::mean_ci(values, kLevel);
        cell.metrics.push_back(std::move(mr));
      }
      if (cell.diverged_episodes > 0)
        spdlog::warn("{} at K={}, {} step(s): {} episode(s) gave NaN/Inf outputs (left out)",
                     cell.method, cell.shots, cell.steps, cell.diverged_episodes);
      result.cells.push_back(std::move(cell));
    }
  }
}

// MetricInfo::fixed_by_query: fixed at every K where some cell has a value of the metric.
void mark_fixed_metrics(ColdStartResult& result) {
  for (MetricInfo& m : result.metrics) {
    bool any = false, always = true;
    for (int k : result.shots) {
      const bool fixed = result.fixed_by_query(m.name, k);
      bool valued = false;
      for (const Cell& c : result.cells) {
        const MetricResult* v = c.shots == k ? c.metric(m.name) : nullptr;
        valued = valued || (v && v->interval.n > 0);
      }
      any = any || fixed;
      always = always && (fixed || !valued);
    }
    m.fixed_by_query = any && always;
  }
}

// Paired differences against each baseline in the same K and steps: the same tasks and
// episodes, so task-to-task variation cancels.
void compare_with_baselines(ColdStartResult& result) {
  for (Cell& cell : result.cells) {
    for (const std::string& b : config::baseline_names()) {
      const Cell* base = result.cell(b, cell.shots, cell.steps);
      if (!base) continue;
      for (std::size_t x = 0; x < result.metrics.size(); ++x) {
        std::vector<double> a, c;
        for (const auto& t : cell.metrics[x].per_task) a.push_back(t.value);
        for (const auto& t : base->metrics[x].per_task) c.push_back(t.value);
        cell.comparisons.push_back(
            {b, result.metrics[x].name, metrics::paired_difference_ci(a, c, kLevel)});
      }
    }
  }
}

}  // namespace

const Cell* best_cell_where(const ColdStartResult& result, int shots, std::size_t metric_index,
                            const std::function<bool(const Cell&)>& among) {
  if (metric_index >= result.metrics.size()) return nullptr;
  const bool higher = result.metrics[metric_index].higher_is_better;
  const Cell* best = nullptr;
  for (const Cell& c : result.cells) {
    if (c.shots != shots || metric_index >= c.metrics.size() || (among && !among(c))) continue;
    const double v = c.metrics[metric_index].interval.mean;
    if (!std::isfinite(v)) continue;
    if (!best || better(v, best->metrics[metric_index].interval.mean, higher)) best = &c;
  }
  return best;
}

const Cell* best_cell(const ColdStartResult& result, int shots, std::size_t metric_index,
                      const std::string& method) {
  if (method.empty()) return best_cell_where(result, shots, metric_index, {});
  return best_cell_where(result, shots, metric_index,
                         [&](const Cell& c) { return c.method == method; });
}

const MetricResult* Cell::metric(const std::string& name) const {
  for (const auto& m : metrics)
    if (m.metric == name) return &m;
  return nullptr;
}

const Comparison* Cell::comparison(const std::string& baseline, const std::string& metric) const {
  for (const auto& c : comparisons)
    if (c.baseline == baseline && c.metric == metric) return &c;
  return nullptr;
}

const Cell* ColdStartResult::cell(const std::string& method, int k, int s) const {
  for (const auto& c : cells)
    if (c.method == method && c.shots == k && c.steps == s) return &c;
  return nullptr;
}

const ShotTasks* ColdStartResult::tasks_at(int k) const {
  for (const auto& t : tasks)
    if (t.shots == k) return &t;
  return nullptr;
}

bool ColdStartResult::fixed_by_query(const std::string& metric, int k) const {
  const ShotTasks* t = tasks_at(k);
  return t && contains(t->fixed_by_query, metric);
}

ColdStartResult run_cold_start(const ColdStartOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  check_options(options);
  runtime::configure_compute(options.threads);
  const EvaluatedRuns runs = load_evaluated_runs(options);
  const torch::Device device = runtime::torch_device(options.device);

  ColdStartResult result;
  describe_run(runs.first, options, result);
  const std::vector<std::string> run_methods = name_runs(runs.all(), result);
  result.methods = choose_methods(options, run_methods);

  // Which held-out tasks can give episodes at each K, before any expensive work.
  const auto new_tasks = held_out_tasks(runs, options.task_role);
  result.new_tasks = static_cast<int>(new_tasks.size());
  const std::vector<ShotPlan> plans = plan_episodes(runs.first, new_tasks, options, result);
  std::size_t total_episodes = 0;
  for (const auto& plan : plans)
    total_episodes += plan.eligible.size() * static_cast<std::size_t>(options.episodes);

  const std::vector<MethodLearner> learners =
      build_method_learners(runs, run_methods, options, device, result);
  spdlog::info(
      "cold-start eval of {}: methods {}, {} {} tasks, shots {}, steps {}, {} episodes "
      "per task",
      runs.first.checkpoint_path, join(result.methods, ", "), new_tasks.size(), options.task_role,
      join_ints(result.shots), join_ints(result.steps), options.episodes);
  Progress progress("cold-start eval", "episodes", static_cast<double>(total_episodes));
  std::size_t done = 0;
  for (std::size_t ki = 0; ki < result.shots.size(); ++ki)
    evaluate_shots(ki, plans[ki], learners, *runs.first.data, options, device, progress, done,
                   result);
  progress.finish();
  mark_fixed_metrics(result);

  compare_with_baselines(result);
  for (int k : result.shots) result.verdicts.push_back(make_verdict(result, k));
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return result;
}

}  // namespace ml::eval
