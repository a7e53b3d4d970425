// The cold-start protocol: see cold_start.hpp.
#include "eval/cold_start.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "eval/pretrain_baseline.hpp"
#include "meta/meta_learner.hpp"
#include "meta/probe_baselines.hpp"
#include "metrics/metrics.hpp"
#include "models/query_metrics.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/training_progress.hpp"
#include "run/validated_adaptation.hpp"
#include "runtime/device.hpp"
#include "runtime/work_share.hpp"
#include "runtime/worker_pool.hpp"
#include "tasks/episode_sampler.hpp"
#include "train/data_parallel.hpp"
#include "train/trainer.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/json_diff.hpp"
#include "util/progress.hpp"
#include "util/same_file.hpp"
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

// How an arm turns a support set into query outputs.
enum class ArmKind {
  kAdapt,             // the learner's own adaptation (inner loop, or protonet's prototypes)
  kLinearProbe,       // a linear model fitted on the learner's representation of the support
  kNearestClassMean,  // class means of that representation
};

// One evaluated method: a family at one inner lr, with the learner it adapts (or reads the
// representation of) and the data it encodes with.
struct Arm {
  MethodInfo info;  // info.l2: the linear probe's penalty
  ArmKind kind = ArmKind::kAdapt;
  config::Config config;                    // the config its learner was built with
  meta::MetaLearner* learner = nullptr;     // owned by the run or by ArmSet::learners
  const pipeline::RunData* data = nullptr;  // the run's data: its own features and encoding
};

struct ArmSet {
  std::vector<std::unique_ptr<meta::MetaLearner>> learners;  // those no run owns
  std::vector<Arm> arms;

  meta::MetaLearner* own(std::unique_ptr<meta::MetaLearner> learner) {
    learners.push_back(std::move(learner));
    return learners.back().get();
  }
};

// Query outputs after each of `steps` (the non-adapting kinds give one result for all).
std::vector<torch::Tensor> arm_outputs(const Arm& arm, const meta::TaskBatch& batch,
                                       const std::vector<int>& steps, tasks::LabelKind kind) {
  if (arm.kind == ArmKind::kAdapt)
    return arm.learner->outputs_at_steps(batch.support, batch.query, steps);
  const auto& model = *arm.learner->model();
  torch::Tensor out;
  {
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> params = model.params();
    const torch::Tensor zs = model.represent(batch.support, params);
    const torch::Tensor zq = model.represent(batch.query, params);
    const std::int64_t classes = model.outputs();
    out = arm.kind == ArmKind::kLinearProbe
              ? meta::linear_probe_outputs(zs, batch.support.target, zq, kind, classes, arm.info.l2)
              : meta::nearest_class_mean_outputs(zs, batch.support.target, zq, classes);
  }
  return std::vector<torch::Tensor>(steps.size(), out);
}

// The sections that decide which tasks and episodes exist: runs compared on one set of
// episodes must agree on them.
constexpr const char* kEpisodeSections[] = {"seed", "data", "task", "split"};

void check_same_episodes(const run::LoadedRun& first, const run::LoadedRun& other) {
  config::Json a, b;
  to_json(a, first.config);
  to_json(b, other.config);
  for (const char* section : kEpisodeSections) {
    if (a[section] == b[section]) continue;
    throw ConfigError("'" + other.checkpoint_path + "' differs from '" + first.checkpoint_path +
                      "' at " + first_json_difference(a[section], b[section], section) +
                      ": runs evaluated together must share seed, data, task and split, so "
                      "that every method sees the same tasks and episodes");
  }
}

// The pretrain baseline's candidate checkpoints (eval/pretrain_baseline.hpp), each with its
// learner.
struct PretrainSource {
  std::string how;         // "reused" | "resumed" | "trained"
  std::string checkpoint;  // the first candidate's file
};

struct PretrainCheckpoint {
  std::string label;  // "best" or "latest"
  std::string file;
  std::unique_ptr<meta::MetaLearner> learner;
};

std::vector<PretrainCheckpoint> pretrain_checkpoints(
    const run::LoadedRun& run, const fs::path& run_dir, const config::Config& pc,
    const torch::Device& device, const runtime::WorkShare& share, PretrainSource& source) {
  const PretrainBaseline baseline = ensure_pretrain_baseline(run_dir, pc, share);
  source.how = baseline.how;
  const fs::path dir = pc.run.dir;
  // Its checkpoints are candidates, chosen among on validation tasks with the fine-tuning each
  // family applies (a checkpoint selected by its own validation pass at the run's inner lr need
  // not suit head-only fine-tuning at another): best (when there is one) and latest, unless
  // both hold the same iteration.
  const run::CheckpointMeta run_meta = run::read_checkpoint_meta(run.checkpoint_path);
  std::vector<PretrainCheckpoint> candidates;
  for (const std::string& file : baseline.checkpoints) {
    run::Checkpoint checkpoint = run::load_checkpoint(file);
    if (checkpoint.meta.features != run_meta.features)
      throw CheckpointError("'" + file + "' was fitted on other feature statistics than '" +
                            run.checkpoint_path +
                            "' (the log changed since the run was trained?); delete '" +
                            dir.string() + "' to retrain the pretrain baseline");
    auto learner = run::build_learner(pc, run.data->features, device);
    checkpoint.read_state(
        [&](torch::serialize::InputArchive& archive) {
          run::read_learner(archive, *learner, file);
        },
        device);
    candidates.push_back({fs::path(file).stem().string(), file, std::move(learner)});
  }
  source.checkpoint = candidates.front().file;
  return candidates;
}

std::vector<int> sorted_unique(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// "0.1", "0.03": a learning rate as short as it reads, for messages.
std::string lr_text(double lr) {
  return short_number(lr);
}

// Each of `lrs` (distinct) as short as it reads, with more digits only where two would read
// alike (0.1 and 0.1000001): method names must tell the variants apart.
std::vector<std::string> lr_texts(const std::vector<double>& lrs) {
  for (int precision = 6;; ++precision) {
    std::vector<std::string> texts;
    for (double lr : lrs) {
      std::ostringstream out;
      out.precision(precision);
      out << lr;
      texts.push_back(out.str());
    }
    std::vector<std::string> sorted = texts;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end() || precision >= 17)
      return texts;
  }
}

void check_options(const ColdStartOptions& o) {
  if (o.shots.empty()) throw UsageError("--shots: give at least one support size");
  if (o.steps.empty()) throw UsageError("--steps: give at least one step count");
  for (int k : o.shots)
    if (k < 1 || k > run::kMaxShots)
      throw UsageError("--shots " + std::to_string(k) + ": must be from 1 to " +
                       std::to_string(run::kMaxShots));
  for (int s : o.steps)
    if (s < 0 || s > run::kMaxAdaptSteps)
      throw UsageError("--steps " + std::to_string(s) + ": must be from 0 to " +
                       std::to_string(run::kMaxAdaptSteps));
  if (o.episodes < 1 || o.episodes > config::kMaxEpisodes)
    throw UsageError("--episodes " + std::to_string(o.episodes) + ": must be from 1 to " +
                     std::to_string(config::kMaxEpisodes));
  if (o.threads < 0) throw UsageError("--threads " + std::to_string(o.threads) + ": must be >= 0");
  if (o.task_role != "new" && o.task_role != "validation")
    throw UsageError("--tasks " + o.task_role + ": must be new or validation");
  for (const auto* lrs : {&o.inner_lrs, &o.baseline_lrs})
    for (double lr : *lrs)
      if (!(lr > 0) || !config::fits_float(lr))
        throw UsageError(std::string(lrs == &o.inner_lrs ? "--inner-lrs " : "--baseline-lrs ") +
                         lr_text(lr) + ": a learning rate must be > 0 and " + config::kFitsFloat);
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The baseline families built on the pretrain run (trained into RUN/baselines/pretrain).
const std::string kPretrainHead = "pretrain_head";
const std::string kLinearProbe = "linear_probe";
const std::string kNearestClassMean = "nearest_class_mean";

struct Family {
  std::string name;
  bool baseline = false;
  int run = -1;          // index into the evaluated runs, -1 for a built-in baseline
  int group = 0;         // the representation group (index into RunGroups)
  std::string built_in;  // a built-in baseline's kind (pretrain, linear_probe, ...), else ""
};

// Runs that encode their examples alike (the same features and model sections) form one
// representation group. Each group gets its own built-in baselines, trained with its config,
// so a meta-learner is never compared against baselines that lack its features or model.
struct RunGroups {
  std::vector<int> of_run;          // the group of each evaluated run
  std::vector<int> representative;  // each group's first run (whose config its baselines use)
};

RunGroups group_runs(const std::vector<const run::LoadedRun*>& runs) {
  RunGroups groups;
  std::vector<config::Json> keys;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    config::Json j;
    to_json(j, runs[i]->config);
    const config::Json key{j["features"], j["model"]};
    const auto found = std::find(keys.begin(), keys.end(), key);
    if (found != keys.end()) {
      groups.of_run.push_back(static_cast<int>(found - keys.begin()));
      continue;
    }
    groups.of_run.push_back(static_cast<int>(keys.size()));
    groups.representative.push_back(static_cast<int>(i));
    keys.push_back(key);
  }
  return groups;
}

// A built-in baseline's family name in a group: plain in the first run's group, else suffixed
// with the group's first run, e.g. "pretrain[anil_history]".
std::string group_family_name(const std::string& baseline, int group, const RunGroups& groups,
                              const std::vector<std::string>& run_names) {
  if (group == 0) return baseline;
  return baseline + "[" +
         run_names[static_cast<std::size_t>(
             groups.representative[static_cast<std::size_t>(group)])] +
         "]";
}

// The runs' families (first run first; a run trained as pretrain or scratch is a baseline),
// then, per representation group, the built-in baselines that apply and that no run of the group
// already is, filtered by --methods.
std::vector<Family> choose_families(const ColdStartOptions& o,
                                    const std::vector<const run::LoadedRun*>& runs,
                                    const std::vector<std::string>& run_names,
                                    const RunGroups& groups, tasks::LabelKind kind) {
  std::vector<Family> available;
  for (std::size_t i = 0; i < runs.size(); ++i)
    available.push_back({run_names[i], config::is_baseline(runs[i]->config.meta.algorithm),
                         static_cast<int>(i), groups.of_run[i], ""});
  const std::string pretrain = enum_name(config::Algorithm::kPretrain);
  const std::string scratch = enum_name(config::Algorithm::kScratch);
  auto has = [&](const std::string& name) {
    for (const auto& f : available)
      if (f.name == name) return true;
    return false;
  };
  // Whether a run of the group was itself trained as `algorithm` (it then is that baseline).
  auto group_has_run = [&](int group, const std::string& algorithm) {
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (groups.of_run[i] == group && enum_name(runs[i]->config.meta.algorithm) == algorithm)
        return true;
    return false;
  };
  std::vector<std::string> on_pretrain;  // the built-ins that need a pretrain run
  for (std::size_t g = 0; g < groups.representative.size(); ++g) {
    const int group = static_cast<int>(g);
    const run::LoadedRun& rep = *runs[static_cast<std::size_t>(groups.representative[g])];
    std::vector<std::string> built_in{pretrain};
    if (rep.config.meta.inner_params != config::InnerParams::kHead)
      built_in.push_back(kPretrainHead);
    built_in.push_back(kLinearProbe);
    if (kind == tasks::LabelKind::kMulticlass) built_in.push_back(kNearestClassMean);
    built_in.push_back(scratch);
    for (const auto& b : built_in) {
      const std::string name = group_family_name(b, group, groups, run_names);
      if (has(name) || group_has_run(group, b)) continue;
      available.push_back({name, true, -1, group, b});
      if (b != scratch) on_pretrain.push_back(name);
    }
  }
  std::vector<std::string> names;
  for (const auto& f : available) names.push_back(f.name);
  const std::string offered = o.compare.empty() ? "this run offers " : "these runs offer ";
  for (const auto& m : o.methods)
    if (!contains(names, m))
      throw UsageError("--methods " + m + ": " + offered + join(names, ", "));
  for (const auto& m : o.methods)
    if (!o.pretrain && contains(on_pretrain, m))
      throw UsageError("--no-pretrain contradicts --methods " + m +
                       " (it is built on the pretrain run)");
  std::vector<Family> chosen;
  for (const auto& f : available) {
    if (!o.methods.empty() && !contains(o.methods, f.name)) continue;
    if (!o.pretrain && contains(on_pretrain, f.name)) continue;
    chosen.push_back(f);
  }
  if (chosen.empty()) throw UsageError("--methods: no method left to evaluate");
  return chosen;
}

std::vector<double> sorted_unique_lrs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
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
  if (m.item_text.enabled())
    text += ", item text (" + join(m.item_text.columns, ", ") + ") encoder " +
            std::to_string(m.item_text.dim) + "x" + std::to_string(m.item_text.layers);
  if (m.user_sequence.enabled())
    text += ", user sequence of " + std::to_string(m.user_sequence.length) + " items, " +
            std::to_string(m.user_sequence.layers) + " causal layer(s)";
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

// The best choice at K among the meta-learners (baseline = false) or the baselines, by the
// validation mean.
const Choice* best_choice(const ColdStartResult& r, int k, bool baseline) {
  const bool higher = r.metrics.front().higher_is_better;
  const Choice* best = nullptr;
  for (const Choice& c : r.choices)
    if (c.shots == k && c.baseline == baseline && std::isfinite(c.validation.mean) &&
        (!best || better(c.validation.mean, best->validation.mean, higher)))
      best = &c;
  return best;
}

// "maml lr=0.1 (5 steps)"; at 0 steps the rate is left out (nothing adapts, every rate gives the
// same outputs): "maml (0 steps: not adapted)".
std::string choice_text(const Choice& c) {
  if (c.steps != 0) return c.method + " (" + steps_text(c.steps) + ")";
  std::string name = c.method;
  const auto lr = name.find(" lr=");
  if (lr != std::string::npos) {
    const auto end = name.find(' ', lr + 1);
    name.erase(lr, end == std::string::npos ? std::string::npos : end - lr);
  }
  return name + " (0 steps: not adapted)";
}

Verdict make_verdict(const ColdStartResult& r, int k) {
  Verdict v;
  v.shots = k;
  const MetricInfo& primary = r.metrics.front();
  const std::string at = "K=" + std::to_string(k) + ": ";
  const ShotTasks* validation = nullptr;
  for (const auto& t : r.validation_tasks)
    if (t.shots == k) validation = &t;
  v.validation_tasks = validation ? static_cast<int>(validation->evaluated.size()) : 0;
  const Choice* learner = best_choice(r, k, false);
  const Choice* baseline = best_choice(r, k, true);
  if (r.task_role == "validation") {
    // Exploring the validation tasks: what the protocol would choose, and no verdict (the
    // values are the very ones it chose on).
    const ShotTasks* here = r.tasks_at(k);
    v.validation_tasks = here ? static_cast<int>(here->evaluated.size()) : 0;
    v.text = at + "exploration of " + std::to_string(v.validation_tasks) +
             " validation tasks (no verdict: these values are what the choice is made on)";
    for (const Choice* c : {learner, baseline})
      if (c)
        v.text += std::string("; ") + (c->baseline ? "baseline " : "meta-learner ") +
                  choice_text(*c) + " " + primary.title + " " +
                  metrics::format_interval(c->validation, 3);
    return v;
  }
  if (!learner && !baseline) {
    v.text = at + (v.validation_tasks == 0
                       ? "no validation task gave an episode, so nothing was chosen; the grid is "
                         "exploration only, with no verdict"
                       : "no setting without diverged episodes on the validation tasks");
    return v;
  }
  v.chosen_on = "validation";
  const std::string chosen =
      "chosen on " + std::to_string(v.validation_tasks) + " validation tasks, scored once on " +
      std::to_string(r.tasks_at(k) ? r.tasks_at(k)->evaluated.size() : 0) + " new tasks: ";
  if (!learner || !baseline) {
    const Choice* only = learner ? learner : baseline;
    v.best_method = only->method;
    v.best_steps = only->steps;
    v.best_value = only->test;
    v.text = at + chosen + choice_text(*only) + " " + primary.title + " " +
             metrics::format_interval(only->test, 3) + " (no " +
             (learner ? "baseline" : "meta-learner") + " to compare it with)";
    return v;
  }
  const Cell* a = r.cell(learner->method, k, learner->steps);
  const Cell* b = r.cell(baseline->method, k, baseline->steps);
  v.compared_method = learner->method;
  v.compared_steps = learner->steps;
  v.compared_value = learner->test;
  v.against_method = baseline->method;
  v.against_steps = baseline->steps;
  v.against_value = baseline->test;
  if (a && b) v.difference = paired(*a, *b);
  const auto& d = v.difference;
  const bool learner_better = std::isfinite(d.mean) && (d.mean > 0) == primary.higher_is_better;
  const Choice* winner = learner_better ? learner : baseline;
  v.best_method = winner->method;
  v.best_steps = winner->steps;
  v.best_value = winner->test;
  v.text = at + chosen + choice_text(*learner) + " " + primary.title + " " +
           metrics::format_interval(learner->test, 3) + " vs the " + choice_text(*baseline) +
           " baseline " + metrics::format_interval(baseline->test, 3);
  if (d.n == 0) {
    v.text += "; no new task scored both";
    return v;
  }
  std::string diff = signed_fixed(d.mean, 3);
  if (std::isfinite(d.half_width))
    diff += " [" + signed_fixed(d.lower, 3) + ", " + signed_fixed(d.upper, 3) + "]";
  v.excludes_zero = std::isfinite(d.half_width) && (d.lower > 0 || d.upper < 0);
  v.text += ": difference " + diff;
  if (!std::isfinite(d.half_width))
    v.text += ", too few tasks for an interval";
  else if (v.excludes_zero)
    v.text += ", the 95% CI excludes 0: " + learner->method + " is significantly " +
              (learner_better ? "better" : "worse") + " than the baseline";
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

// A folder that holds runs instead of being one is refused naming them: the likely intent.
void refuse_folder_of_runs(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) || fs::exists(run::RunLayout(path).checkpoints(), ec)) return;
  std::vector<std::string> runs;
  for (const auto& entry : fs::directory_iterator(path, ec))
    if (entry.is_directory(ec) && fs::exists(run::RunLayout(entry.path()).checkpoints(), ec))
      runs.push_back(entry.path().string());
  if (runs.empty()) return;
  std::sort(runs.begin(), runs.end());
  const std::size_t shown = std::min<std::size_t>(runs.size(), 4);
  std::string list = join(std::vector<std::string>(runs.begin(), runs.begin() + shown), ",");
  if (shown < runs.size()) list += ",... (" + std::to_string(runs.size()) + " runs)";
  throw CheckpointError("'" + path + "' is a folder of runs, not a run: name the runs, e.g. " +
                        "--checkpoint " + list);
}

// The compared runs are checked before anything expensive: each given once, the same tasks and
// episodes or none.
EvaluatedRuns load_evaluated_runs(const ColdStartOptions& options) {
  std::vector<std::string> arguments{options.checkpoint};
  arguments.insert(arguments.end(), options.compare.begin(), options.compare.end());
  std::vector<std::string> files;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string path = parse_run_argument(arguments[i]).path;
    refuse_folder_of_runs(path);
    files.push_back(run::resolve_checkpoint_path(path));
    for (std::size_t j = 0; j < i; ++j) {
      if (same_file(files[j], files[i]))
        throw UsageError("--checkpoint: " + arguments[j] + " and " + arguments[i] +
                         " are the same run ('" + files[i] + "'): give each run once");
    }
  }
  EvaluatedRuns runs{load_meta_run(files.front(), options, "a meta-training run"), {}};
  for (std::size_t i = 1; i < files.size(); ++i) {
    runs.others.push_back(load_meta_run(files[i], options, "a run"));
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

// Under a launch: DistributedError on every rank unless all were asked the same evaluation
// of the same runs (checkpoint and data files by content: a host may keep them elsewhere).
void check_same_evaluation(const runtime::WorkShare& share, const ColdStartOptions& o,
                           const EvaluatedRuns& runs) {
  nlohmann::json asked = {{"tasks", o.task_role},
                          {"shots", o.shots},
                          {"steps", o.steps},
                          {"inner_lrs", o.inner_lrs},
                          {"baseline_lrs", o.baseline_lrs},
                          {"methods", o.methods},
                          {"pretrain", o.pretrain},
                          {"episodes", o.episodes},
                          {"top_label_ranking", o.top_label_ranking}};
  nlohmann::json inputs = nlohmann::json::array();
  for (const run::LoadedRun* r : runs.all())
    inputs.push_back({{"checkpoint", file_fingerprint(r->checkpoint_path)},
                      {"data", train::data_fingerprint(r->config)}});
  share.require_same_request("eval", asked, inputs);
}

// Each run's name, in `runs` order (recorded in result.runs): NAME from a NAME=PATH argument;
// else its algorithm when no other run has that algorithm, else its run folder's name. Never
// by argument order: two runs that would share a name are a UsageError asking for NAME=PATH.
std::vector<std::string> name_runs(const std::vector<const run::LoadedRun*>& runs,
                                   const std::vector<std::string>& arguments,
                                   ColdStartResult& result) {
  std::map<std::string, int> algorithm_count;
  for (const run::LoadedRun* r : runs) ++algorithm_count[enum_name(r->config.meta.algorithm)];
  std::vector<std::string> names;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const run::LoadedRun* r = runs[i];
    const config::Algorithm algorithm = r->config.meta.algorithm;
    const std::string run_dir = run::run_dir_of(r->checkpoint_path).string();
    const RunArgument argument = parse_run_argument(arguments[i]);
    std::string name = argument.name;
    if (name.empty())
      name = algorithm_count[enum_name(algorithm)] == 1
                 ? enum_name(algorithm)
                 : fs::path(run_dir).lexically_normal().filename().string();
    if (contains(names, name))
      throw UsageError("--checkpoint: two runs would both be named '" + name +
                       "'; name them with NAME=PATH (e.g. --checkpoint " + name +
                       "_a=" + argument.path + ")");
    const bool reserved = name == kPretrainHead || name == kLinearProbe ||
                          name == kNearestClassMean || config::is_baseline_name(name);
    if (reserved && name != enum_name(algorithm))
      throw UsageError("--checkpoint " + arguments[i] + ": '" + name +
                       "' names a built-in baseline; choose another NAME=PATH");
    names.push_back(name);
    result.runs.push_back({name, enum_name(algorithm), r->checkpoint_path, run_dir});
  }
  return names;
}

// The first run's held-out tasks of the asked role; DataError when there are none, or when a
// compared run holds one of them with other examples (one episode's indices must mean the same
// rows to every method).
std::vector<const tasks::Task*> held_out_tasks(const EvaluatedRuns& runs,
                                               const std::string& task_role, bool required) {
  const run::LoadedRun& run = runs.first;
  const config::Config& config = run.config;
  const tasks::TaskRole role =
      task_role == "validation" ? tasks::TaskRole::kValidation : tasks::TaskRole::kNew;
  const auto new_tasks = run.data->tasks.with_role(role);
  if (new_tasks.empty() && required) {
    if (role == tasks::TaskRole::kValidation)
      throw DataError("'" + run.checkpoint_path +
                      "': the run holds out no validation task (split.validation_fraction = " +
                      lr_text(config.split.validation_fraction) + " selected none)");
    throw DataError("'" + run.checkpoint_path +
                    "': the run holds out no new task (split.new_tasks is empty and "
                    "split.new_fraction = " +
                    lr_text(config.split.new_fraction) + " selected none)");
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

// One plan per K in `shots` over `held_out` tasks, which tasks each K evaluates recorded in
// `recorded`; DataError when `required` and no task can give an episode at any K.
std::vector<ShotPlan> plan_episodes(const run::LoadedRun& run,
                                    const std::vector<const tasks::Task*>& held_out,
                                    const std::vector<int>& shots, const std::string& task_role,
                                    const ColdStartOptions& options, bool required,
                                    std::vector<ShotTasks>& recorded) {
  const config::Config& config = run.config;
  const tasks::LabelKind kind = run.data->tasks.kind;
  std::vector<ShotPlan> plans;
  std::size_t total_episodes = 0;
  for (int k : shots) {
    if (static_cast<std::int64_t>(k) + config.task.query > std::numeric_limits<int>::max())
      throw UsageError("--shots " + std::to_string(k) + ": support + task.query = " +
                       std::to_string(static_cast<std::int64_t>(k) + config.task.query) +
                       " examples is more than any task holds");
    tasks::EpisodeShape shape = tasks::episode_shape(config.task);
    shape.support = k;
    ShotPlan plan{{}, tasks::EpisodeSampler(kind, shape, config.seed)};
    ShotTasks st;
    st.shots = k;
    for (const tasks::Task* t : held_out) {
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
    total_episodes += plan.eligible.size() * static_cast<std::size_t>(options.episodes);
    recorded.push_back(std::move(st));
    plans.push_back(std::move(plan));
  }
  if (total_episodes == 0 && required) {
    const auto& first = recorded.front().skipped.front();
    throw DataError("no " + task_role + " task can give an episode for --shots " +
                    join_ints(shots) + " with task.query = " + std::to_string(config.task.query) +
                    " (" + std::to_string(held_out.size()) + " " + task_role + " tasks; e.g. '" +
                    first.task + "' at K=" + std::to_string(shots.front()) + ": " + first.reason +
                    "); ask for smaller --shots");
  }
  // Only when the evaluation goes on: an error above says it all in one line.
  for (const ShotTasks& st : recorded)
    if (!st.skipped.empty())
      spdlog::warn("K={}: {} of {} {} tasks cannot give an episode and are skipped (e.g. '{}': {})",
                   st.shots, st.skipped.size(), held_out.size(), task_role, st.skipped[0].task,
                   st.skipped[0].reason);
  return plans;
}

std::size_t episode_count(const std::vector<ShotPlan>& plans, int episodes) {
  std::size_t n = 0;
  for (const auto& plan : plans) n += plan.eligible.size() * static_cast<std::size_t>(episodes);
  return n;
}

// The inner learning rates a family is evaluated at: NaN alone where it has no inner loop or
// learns its rates; the baselines' grid (with the run's rate) for fine-tuning baselines; the
// asked or the run's own rate for meta-learners.
std::vector<double> family_lrs(const Family& f, const config::Config& config,
                               const ColdStartOptions& o) {
  const config::Algorithm algorithm = config.meta.algorithm;
  if (f.built_in == kLinearProbe || f.built_in == kNearestClassMean ||
      algorithm == config::Algorithm::kProtonet || algorithm == config::Algorithm::kMetaSgd)
    return {NAN};
  if (f.built_in == enum_name(config::Algorithm::kScratch)) return {config.meta.inner_lr};
  std::vector<double> lrs = f.baseline ? o.baseline_lrs : o.inner_lrs;
  if (f.baseline) lrs.push_back(config.meta.inner_lr);
  if (lrs.empty()) lrs = adaptation_lr_grid(config.meta.inner_lr);
  return sorted_unique_lrs(lrs);
}

// The arms of the chosen families, each with the config it was built with: the runs' own, and
// per representation group a scratch init and the baselines on the group's pretrain run (a
// pretrain run of the group, or trained into REP/baselines/pretrain of the group's first run if
// need be). Variants at other inner lrs (or head-only) share their family's model.
ArmSet build_arms(const EvaluatedRuns& evaluated, const std::vector<Family>& families,
                  const RunGroups& groups, const ColdStartOptions& options,
                  const torch::Device& device, ColdStartResult& result) {
  const auto runs = evaluated.all();
  const tasks::LabelKind kind = evaluated.first.data->tasks.kind;
  ArmSet set;
  // Each group's pretrain checkpoints (label, learner) and config, loaded once for every family
  // built on them.
  struct GroupPretrain {
    std::vector<std::pair<std::string, meta::MetaLearner*>> learners;
    config::Config config;
  };
  std::map<int, GroupPretrain> pretrain;
  auto group_pretrain = [&](int group) -> const GroupPretrain& {
    auto found = pretrain.find(group);
    if (found != pretrain.end()) return found->second;
    GroupPretrain& p = pretrain[group];
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (groups.of_run[i] == group &&
          runs[i]->config.meta.algorithm == config::Algorithm::kPretrain) {
        // A pretrain run of the group: its families are built on it, trained once.
        p.config = runs[i]->config;
        p.learners = {{"", runs[i]->learner.get()}};
        if (group == 0) result.pretrain_source = "run";
        return p;
      }
    const run::LoadedRun& rep =
        *runs[static_cast<std::size_t>(groups.representative[static_cast<std::size_t>(group)])];
    const run::RunLayout layout(run::run_dir_of(rep.checkpoint_path));
    p.config = with_algorithm(rep.config, config::Algorithm::kPretrain,
                              layout.pretrain_baseline().string(), options.threads);
    p.config.run.device = runtime::parse_device(options.device);
    PretrainSource source;
    auto candidates = pretrain_checkpoints(rep, layout.dir, p.config, device,
                                           runtime::WorkShare(options.group), source);
    if (group == 0) {
      result.pretrain_source = source.how;
      result.pretrain_checkpoint = source.checkpoint;
    }
    for (auto& c : candidates)
      p.learners.emplace_back(candidates.size() > 1 ? c.label : "", set.own(std::move(c.learner)));
    return p;
  };
  for (const Family& f : families) {
    const run::LoadedRun& rep =
        *runs[static_cast<std::size_t>(groups.representative[static_cast<std::size_t>(f.group)])];
    Arm base;
    base.data = rep.data.get();
    std::vector<std::pair<std::string, meta::MetaLearner*>> learners;  // "" = the only one
    if (f.run >= 0) {
      const run::LoadedRun& r = *runs[static_cast<std::size_t>(f.run)];
      base.config = r.config;
      base.data = r.data.get();
      learners = {{"", r.learner.get()}};
      if (f.name == enum_name(config::Algorithm::kPretrain)) result.pretrain_source = "run";
    } else if (f.built_in == enum_name(config::Algorithm::kScratch)) {
      base.config = with_algorithm(rep.config, config::Algorithm::kScratch, rep.config.run.dir,
                                   options.threads);
      learners = {{"", set.own(run::build_learner(base.config, rep.data->features, device))}};
    } else {  // built on the group's pretrain run
      const GroupPretrain& p = group_pretrain(f.group);
      base.config = p.config;
      learners = p.learners;
      if (f.built_in == kLinearProbe) base.kind = ArmKind::kLinearProbe;
      if (f.built_in == kNearestClassMean) base.kind = ArmKind::kNearestClassMean;
      if (f.built_in == kPretrainHead) base.config.meta.inner_params = config::InnerParams::kHead;
    }
    const std::vector<double> lrs = family_lrs(f, base.config, options);
    std::vector<double> penalties{NAN};
    if (base.kind == ArmKind::kLinearProbe)
      penalties.assign(std::begin(meta::kLinearProbePenalties),
                       std::end(meta::kLinearProbePenalties));
    const std::vector<std::string> lr_names = lr_texts(lrs);
    for (const auto& [checkpoint, learner] : learners)
      for (std::size_t li = 0; li < lrs.size(); ++li)
        for (double l2 : penalties) {
          const double lr = lrs[li];
          Arm arm = base;
          std::string name = f.name;
          if (lrs.size() > 1) name += " lr=" + lr_names[li];
          if (penalties.size() > 1) name += " l2=" + lr_text(l2);
          if (!checkpoint.empty()) name += " @" + checkpoint;
          arm.info = {name, f.name, lr, f.baseline, l2};
          if (!std::isnan(lr)) arm.config.meta.inner_lr = lr;
          const config::MetaConfig& built = learner->config();
          const bool same_learner =
              std::isnan(lr) ||
              (lr == built.inner_lr && arm.config.meta.inner_params == built.inner_params);
          arm.learner = same_learner ? learner
                                     : set.own(std::make_unique<meta::MetaLearner>(
                                           arm.config.meta, kind, learner->model()));
          result.methods.push_back(arm.info.name);
          result.method_info.push_back(arm.info);
          set.arms.push_back(std::move(arm));
        }
  }
  return set;
}

// Rows of the largest episode the grid adapts on and scores: the largest K and the query (K =
// "all" counted as another query's worth; the thread plan needs a size, not an exact one).
std::int64_t largest_episode_rows(const std::vector<int>& shots, const run::LoadedRun& run) {
  const int query = std::max(1, run.config.task.query);
  int largest = 1;
  for (int k : shots) largest = std::max(largest, k == config::kSupportAll ? query : k);
  return largest + query;
}

// What one stage evaluates: the result's grid on one role's tasks.
struct Stage {
  const std::vector<ShotPlan>& plans;  // aligned with result.shots
  std::vector<ShotTasks>& tasks;       // the same; each K's fixed_by_query is recorded here
  std::vector<Cell>& cells;            // where the cells go
};

// Every arm's cells at one K: each arm adapts on the same sampled episodes, and the per-task
// means over episodes give each metric's interval over tasks.
void evaluate_shots(std::size_t ki, const ShotPlan& plan, const ArmSet& arms,
                    const pipeline::RunData& data, const ColdStartOptions& options,
                    const torch::Device& device, runtime::WorkerPool& pool, Progress& progress,
                    std::size_t& done, const ColdStartResult& result, ShotTasks& shot_tasks,
                    std::vector<Cell>& cells) {
  const runtime::WorkShare share(options.group);
  const tasks::LabelKind kind = data.tasks.kind;
  const std::size_t n_metrics = result.metrics.size();
  const std::size_t n_steps = result.steps.size();
  const std::size_t n_arms = arms.arms.size();
  const auto& tasks_k = plan.eligible;
  // (sum, count) over episodes per arm, step, metric and task.
  std::vector<std::pair<double, int>> sums(n_arms * n_steps * n_metrics * tasks_k.size());
  auto slot = [&](std::size_t mi, std::size_t si, std::size_t x, std::size_t ti) -> auto& {
    return sums[((mi * n_steps + si) * n_metrics + x) * tasks_k.size() + ti];
  };
  std::vector<std::vector<int>> diverged(n_arms, std::vector<int>(n_steps, 0));
  // Per metric: whether some episode gave it a value, and whether every one that did was fixed.
  std::vector<bool> seen(n_metrics, false), fixed(n_metrics, true);
  // Each (task, episode) is computed on the pool's workers into a slot of its own, and the slots
  // are added up below in (task, episode) order: the means do not depend on the worker count.
  struct ArmStep {
    bool finite = false;
    EpisodeValues values;
  };
  const auto per_task = static_cast<std::size_t>(options.episodes);
  std::vector<std::vector<ArmStep>> episodes(tasks_k.size() * per_task,
                                             std::vector<ArmStep>(n_arms * n_steps));
  std::mutex progress_mutex;
  // Under a launch this rank computes its share of the episodes, the others theirs.
  const auto [first, last] = share.mine(episodes.size());
  pool.run(last - first, [&](std::size_t j) {
    throw_if_interrupted("evaluating episodes");
    const std::size_t i = first + j;
    const std::size_t ti = i / per_task;
    const auto e = static_cast<std::uint64_t>(i % per_task);
    // Sampled once and shared by every arm: the pairing is by construction.
    const tasks::Episode episode = plan.sampler.sample(*tasks_k[ti], kEvalEpisodeBase + e);
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
    for (std::size_t q : episode.query) users.push_back(episode.task->examples[q].user);
    std::vector<ArmStep>& out = episodes[i];
    for (std::size_t mi = 0; mi < n_arms; ++mi) {
      const Arm& arm = arms.arms[mi];
      const meta::TaskBatch& batch = batch_for(arm.data);
      const auto outs = arm_outputs(arm, batch, result.steps, kind);
      for (std::size_t si = 0; si < n_steps; ++si) {
        ArmStep& r = out[mi * n_steps + si];
        r.finite = torch::isfinite(outs[si]).all().item<bool>();
        if (r.finite)
          r.values = episode_metrics(kind, result.metrics, outs[si], batch.query, users);
      }
    }
    const std::lock_guard<std::mutex> lock(progress_mutex);
    progress.update(static_cast<double>(++done));
  });
  if (share.sharded()) {
    // Per episode, arm and step: whether its outputs were finite, then each metric's value and
    // whether the query fixed it.
    const std::size_t per_step = 1 + 2 * n_metrics, width = n_arms * n_steps * per_step;
    std::vector<double> rows(episodes.size() * width, 0.0);
    for (std::size_t i = first; i < last; ++i)
      for (std::size_t a = 0; a < n_arms * n_steps; ++a) {
        const ArmStep& r = episodes[i][a];
        double* row = &rows[i * width + a * per_step];
        row[0] = r.finite ? 1 : 0;
        for (std::size_t x = 0; r.finite && x < n_metrics; ++x) {
          row[1 + x] = r.values.values[x];
          row[1 + n_metrics + x] = r.values.fixed[x] ? 1 : 0;
        }
      }
    share.fill_in(rows, width, {first, last});
    for (std::size_t i = 0; i < episodes.size(); ++i) {
      if (i >= first && i < last) continue;
      for (std::size_t a = 0; a < n_arms * n_steps; ++a) {
        ArmStep& r = episodes[i][a];
        const double* row = &rows[i * width + a * per_step];
        r.finite = row[0] != 0;
        if (!r.finite) continue;
        r.values.values.assign(row + 1, row + 1 + n_metrics);
        r.values.fixed.resize(n_metrics);
        for (std::size_t x = 0; x < n_metrics; ++x) r.values.fixed[x] = row[1 + n_metrics + x] != 0;
      }
    }
  }
  for (std::size_t i = 0; i < episodes.size(); ++i) {
    const std::size_t ti = i / per_task;
    for (std::size_t mi = 0; mi < n_arms; ++mi) {
      for (std::size_t si = 0; si < n_steps; ++si) {
        const ArmStep& r = episodes[i][mi * n_steps + si];
        if (!r.finite) {
          ++diverged[mi][si];
          continue;
        }
        for (std::size_t x = 0; x < n_metrics; ++x) {
          if (!std::isfinite(r.values.values[x])) continue;
          slot(mi, si, x, ti).first += r.values.values[x];
          slot(mi, si, x, ti).second += 1;
          seen[x] = true;
          fixed[x] = fixed[x] && r.values.fixed[x];
        }
      }
    }
  }
  for (std::size_t x = 0; x < n_metrics; ++x)
    if (seen[x] && fixed[x]) shot_tasks.fixed_by_query.push_back(result.metrics[x].name);
  for (std::size_t mi = 0; mi < n_arms; ++mi) {
    for (std::size_t si = 0; si < n_steps; ++si) {
      Cell cell;
      cell.method = arms.arms[mi].info.name;
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
        spdlog::warn(
            "{} at K={}, {} step(s): {} episode(s) gave NaN/Inf outputs (left out of the means; "
            "a setting that diverges on validation tasks is never chosen)",
            cell.method, cell.shots, cell.steps, cell.diverged_episodes);
      cells.push_back(std::move(cell));
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

void evaluate_stage(const Stage& stage, const ArmSet& arms, const pipeline::RunData& data,
                    const ColdStartOptions& options, const torch::Device& device,
                    runtime::WorkerPool& pool, const std::string& what,
                    const ColdStartResult& result) {
  const std::size_t total = episode_count(stage.plans, options.episodes);
  if (total == 0) return;
  // This rank's share of each K's episodes.
  const runtime::WorkShare share(options.group);
  std::size_t mine = 0;
  for (const ShotPlan& plan : stage.plans) {
    const auto [first, last] =
        share.mine(plan.eligible.size() * static_cast<std::size_t>(options.episodes));
    mine += last - first;
  }
  Progress progress(what + (share.sharded() ? " (this rank's share)" : ""), "episodes",
                    static_cast<double>(mine));
  std::size_t done = 0;
  for (std::size_t ki = 0; ki < result.shots.size(); ++ki)
    evaluate_shots(ki, stage.plans[ki], arms, data, options, device, pool, progress, done, result,
                   stage.tasks[ki], stage.cells);
  progress.finish();
}

// Paired differences of every cell against the baseline chosen on validation at its K (that
// method and step count): the same tasks and episodes, so task-to-task variation cancels.
void compare_with_chosen_baseline(ColdStartResult& result) {
  for (int k : result.shots) {
    const Choice* baseline = best_choice(result, k, true);
    if (!baseline) continue;
    const Cell* base = result.cell(baseline->method, k, baseline->steps);
    if (!base) continue;
    for (Cell& cell : result.cells) {
      if (cell.shots != k || &cell == base) continue;
      for (std::size_t x = 0; x < result.metrics.size(); ++x) {
        std::vector<double> a, c;
        for (const auto& t : cell.metrics[x].per_task) a.push_back(t.value);
        for (const auto& t : base->metrics[x].per_task) c.push_back(t.value);
        cell.comparisons.push_back({baseline->method, baseline->steps, result.metrics[x].name,
                                    metrics::paired_difference_ci(a, c, kLevel)});
      }
    }
  }
}

// Each choice's value on the role's tasks: the chosen cell's interval there.
void score_choices(ColdStartResult& result) {
  for (Choice& c : result.choices)
    if (const Cell* cell = result.cell(c.method, c.shots, c.steps))
      c.test = cell->metrics.front().interval;
}

}  // namespace

RunArgument parse_run_argument(const std::string& argument) {
  if (argument.empty()) throw UsageError("--checkpoint: an empty value (give PATH or NAME=PATH)");
  const auto eq = argument.find('=');
  if (eq == std::string::npos || fs::exists(argument)) return {"", argument};
  RunArgument a{argument.substr(0, eq), argument.substr(eq + 1)};
  if (a.name.empty())
    throw UsageError("--checkpoint " + argument +
                     ": no NAME before '=' (give NAME=PATH, or the PATH alone)");
  if (a.path.empty()) throw UsageError("--checkpoint " + argument + ": no PATH after '='");
  // The name becomes a method name in tables, the JSON and --methods, where spaces, '=' and '@'
  // already mean something ("maml lr=0.1 @best").
  for (char c : a.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      throw UsageError("--checkpoint " + argument + ": NAME '" + a.name +
                       "' may hold only letters, digits, '_', '-' and '.'");
  return a;
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

const MethodInfo* ColdStartResult::method(const std::string& name) const {
  for (const auto& m : method_info)
    if (m.name == name) return &m;
  return nullptr;
}

const Choice* ColdStartResult::choice(const std::string& family, int shots) const {
  for (const auto& c : choices)
    if (c.family == family && c.shots == shots) return &c;
  return nullptr;
}

bool ColdStartResult::chosen(const Cell& cell) const {
  for (const auto& v : verdicts) {
    if (v.shots != cell.shots) continue;
    if ((cell.method == v.compared_method && cell.steps == v.compared_steps) ||
        (cell.method == v.against_method && cell.steps == v.against_steps))
      return true;
    if (v.compared_method.empty() && cell.method == v.best_method && cell.steps == v.best_steps)
      return true;
  }
  return false;
}

std::vector<Choice> choose_on_validation(const std::vector<Cell>& cells,
                                         const std::vector<MethodInfo>& methods,
                                         const std::vector<int>& shots, bool higher_is_better) {
  std::vector<Choice> choices;
  std::vector<std::string> families;
  for (const auto& m : methods)
    if (!contains(families, m.family)) families.push_back(m.family);
  for (int k : shots) {
    for (const std::string& family : families) {
      Choice choice;
      choice.shots = k;
      choice.family = family;
      const Cell* best = nullptr;
      for (const Cell& c : cells) {
        if (c.shots != k || c.metrics.empty()) continue;
        const auto info = std::find_if(methods.begin(), methods.end(),
                                       [&](const MethodInfo& m) { return m.name == c.method; });
        if (info == methods.end() || info->family != family) continue;
        choice.baseline = info->baseline;
        if (c.diverged_episodes > 0) {
          ++choice.excluded;
          continue;
        }
        const double v = c.metrics.front().interval.mean;
        if (!std::isfinite(v)) continue;
        // Strictly better only: among equals the fewest steps (cells come in step order) and
        // the first variant win, so a setting that changes nothing is not "chosen" for noise.
        if (!best || better(v, best->metrics.front().interval.mean, higher_is_better)) best = &c;
      }
      if (!best) continue;
      choice.method = best->method;
      choice.steps = best->steps;
      choice.validation = best->metrics.front().interval;
      choices.push_back(std::move(choice));
    }
  }
  return choices;
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

std::vector<double> adaptation_lr_grid(double inner_lr) {
  std::vector<double> grid;
  for (double lr : {inner_lr / 3, inner_lr, inner_lr * 3})
    if (run::usable_inner_lr(lr)) grid.push_back(lr);
  return grid;
}

ColdStartResult run_cold_start(const ColdStartOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  check_options(options);
  const runtime::WorkShare share(options.group);
  runtime::ThreadBudget budget = runtime::configure_compute(options.threads);
  share.share_cores(budget);
  std::optional<EvaluatedRuns> loaded;
  share.together("loading the runs", [&] { loaded.emplace(load_evaluated_runs(options)); });
  const EvaluatedRuns& runs = *loaded;
  if (share.sharded()) check_same_evaluation(share, options, runs);
  const torch::Device device = runtime::torch_device(options.device);

  ColdStartResult result;
  describe_run(runs.first, options, result);
  std::vector<std::string> arguments{options.checkpoint};
  arguments.insert(arguments.end(), options.compare.begin(), options.compare.end());
  const std::vector<std::string> run_names = name_runs(runs.all(), arguments, result);
  const RunGroups groups = group_runs(runs.all());
  const std::vector<Family> families =
      choose_families(options, runs.all(), run_names, groups, runs.first.data->tasks.kind);

  // Which held-out tasks can give episodes at each K, before any expensive work.
  const bool two_stages = options.task_role == "new";
  const auto held_out = held_out_tasks(runs, options.task_role, /*required=*/true);
  result.new_tasks = static_cast<int>(held_out.size());
  const std::vector<ShotPlan> plans = plan_episodes(runs.first, held_out, result.shots,
                                                    options.task_role, options, true, result.tasks);
  std::vector<ShotPlan> validation_plans;
  if (two_stages) {
    const auto validation = held_out_tasks(runs, "validation", /*required=*/false);
    validation_plans = plan_episodes(runs.first, validation, result.shots, "validation", options,
                                     false, result.validation_tasks);
    if (episode_count(validation_plans, options.episodes) == 0)
      spdlog::warn(
          "no validation task can give an episode (split.validation_fraction = {}): nothing "
          "can be chosen without looking at the new tasks, so there is no verdict; the grid is "
          "exploration only",
          runs.first.config.split.validation_fraction);
  }

  const ArmSet arms = build_arms(runs, families, groups, options, device, result);
  spdlog::info(
      "cold-start eval of {}: methods {}, {} {} tasks, shots {}, steps {}, {} episodes per task",
      runs.first.checkpoint_path, join(result.methods, ", "), held_out.size(), options.task_role,
      join_ints(result.shots), join_ints(result.steps), options.episodes);
  // Episodes are the units: each adapts a stack of one task, too small for threads inside.
  runtime::WorkShape work;  // on a GPU, episodes run one after another on its stream
  work.units = device.is_cuda() ? 1
                                : static_cast<int>(std::min<std::size_t>(
                                      std::max(episode_count(plans, options.episodes),
                                               episode_count(validation_plans, options.episodes)),
                                      1 << 20));
  work.largest_product =
      runs.first.learner->model()->largest_product(largest_episode_rows(result.shots, runs.first));
  const runtime::ThreadPlan threads = runtime::apply_thread_plan(budget, work, "episodes");
  runtime::WorkerPool pool(threads.workers);
  const bool higher = result.metrics.front().higher_is_better;
  if (two_stages) {
    evaluate_stage({validation_plans, result.validation_tasks, result.validation_cells}, arms,
                   *runs.first.data, options, device, pool, "stage 1: choosing on validation tasks",
                   result);
    result.choices =
        choose_on_validation(result.validation_cells, result.method_info, result.shots, higher);
    evaluate_stage({plans, result.tasks, result.cells}, arms, *runs.first.data, options, device,
                   pool, "stage 2: scoring new tasks", result);
  } else {
    evaluate_stage({plans, result.tasks, result.cells}, arms, *runs.first.data, options, device,
                   pool, "validation tasks (exploration)", result);
    result.choices = choose_on_validation(result.cells, result.method_info, result.shots, higher);
  }
  mark_fixed_metrics(result);
  score_choices(result);
  compare_with_chosen_baseline(result);
  for (int k : result.shots) result.verdicts.push_back(make_verdict(result, k));
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return result;
}

}  // namespace ml::eval
