// Adapting a trained run to new tasks: see adaptation.hpp.
#include "inference/adaptation.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "inference/adapted_model.hpp"
#include "meta/meta_learner.hpp"
#include "metrics/metrics.hpp"
#include "models/batch.hpp"
#include "runtime/device.hpp"
#include "tasks/episode_sampler.hpp"
#include "tasks/task_set.hpp"
#include "train/checkpoint.hpp"
#include "train/learner_state.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::inference {

namespace fs = std::filesystem;
using tasks::LabelKind;

namespace {

QueryMetrics measure(const torch::Tensor& outputs, const models::Batch& query, LabelKind kind) {
  QueryMetrics m;
  if (query.size() == 0) return m;
  if (kind == LabelKind::kMulticlass) {
    torch::Tensor labels = query.target.to(torch::kCPU, torch::kInt64).contiguous();
    std::vector<int> y(static_cast<std::size_t>(labels.numel()));
    for (std::size_t i = 0; i < y.size(); ++i)
      y[i] = static_cast<int>(labels.data_ptr<std::int64_t>()[i]);
    m.accuracy = metrics::multiclass_accuracy(models::to_floats(outputs),
                                              static_cast<std::size_t>(outputs.size(1)), y);
    return m;
  }
  const std::vector<float> out = models::to_floats(outputs.select(1, 0)),
                           y = models::to_floats(query.target);
  if (kind == LabelKind::kRegression) {
    m.rmse = metrics::rmse(out, y);
    m.mae = metrics::mae(out, y);
  } else {
    m.auc = metrics::roc_auc(out, y);
    m.log_loss = metrics::log_loss_from_logits(out, y);
    m.accuracy = metrics::binary_accuracy_from_logits(out, y);
  }
  return m;
}

double headline(const QueryMetrics& m, LabelKind label_kind) {
  switch (label_kind) {
    case LabelKind::kRegression:
      return m.rmse;
    case LabelKind::kMulticlass:
      return m.accuracy;
    case LabelKind::kBinary:
      break;
  }
  return m.auc;
}

bool all_finite(const torch::Tensor& t) {
  return torch::isfinite(t).all().item<bool>();
}

// The run directory a checkpoint argument belongs to: itself, or the folder above the
// checkpoints/ or adapted/ folder a checkpoint file sits in.
fs::path run_root(const std::string& argument) {
  fs::path p(argument);
  if (fs::is_directory(p)) return p;
  fs::path parent = p.parent_path();
  if (parent.filename() == train::kCheckpointDirName || parent.filename() == "adapted")
    return parent.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// Support rows from a CSV, labelled and encoded as the run would: the run's column mapping
// and label rules, the checkpoint's feature statistics bound to this log. Heap-held because the
// encoder points into the log.
struct CsvSupport {
  data::LoadReport report;
  data::PurchaseLog log;
  tasks::TaskSet tasks;
  features::FeatureEncoder encoder;
};

std::unique_ptr<CsvSupport> load_support_csv(const std::string& path, config::Config config,
                                             const features::FeatureSpace& features) {
  config.data.files = {path};
  // The rows are the user's chosen examples: a cutoff meant to separate the training log's
  // history from its examples would silently drop them.
  config.split.time_cutoff.clear();
  auto s = std::make_unique<CsvSupport>();
  s->log = data::load_purchase_log(config, s->report);
  s->tasks = tasks::build_tasks(s->log, config);
  s->encoder = features.bind(s->log);
  if (s->report.rows_rejected > 0)
    spdlog::warn("{}: skipped {} malformed row(s) (data.bad_rows = \"skip\")", path,
                 s->report.rows_rejected);
  return s;
}

std::vector<std::string> task_names(const tasks::TaskSet& set) {
  std::vector<std::string> names;
  for (const auto& t : set.tasks) names.push_back(t.name);
  return names;
}

[[noreturn]] void unknown_task(const std::string& name, const tasks::TaskSet& set,
                               const std::string& where) {
  std::string message = "no task named '" + name + "' in " + where;
  const std::string suggestion = closest_match(name, task_names(set));
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  throw DataError(message);
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

nlohmann::json metrics_json(const QueryMetrics& m, LabelKind label_kind) {
  switch (label_kind) {
    case LabelKind::kRegression:
      return {{"rmse", number_or_null(m.rmse)}, {"mae", number_or_null(m.mae)}};
    case LabelKind::kMulticlass:
      return {{"accuracy", number_or_null(m.accuracy)}};
    case LabelKind::kBinary:
      break;
  }
  return {{"auc", number_or_null(m.auc)},
          {"log_loss", number_or_null(m.log_loss)},
          {"accuracy", number_or_null(m.accuracy)}};
}

// One task's support (and query) encoded on the device, with what the checkpoint records.
struct PreparedTask {
  std::string name, role, support_source;
  meta::TaskBatch batch;
  std::int64_t shots = 0;                // the support size asked (per class for multiclass)
  std::vector<std::string> class_names;  // multiclass: episode label i's class
  nlohmann::json episode;                // the episode index, or null for a CSV
};

}  // namespace

std::string adapted_file_name(const std::string& task) {
  std::string out;
  for (char c : task) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                      c == '.' || (c & 0x80);
    out += keep ? c : '_';
  }
  // A name of dots alone would point at a folder, and a leading dot hides the file.
  if (out.empty() || out.find_first_not_of('.') == std::string::npos) out = "task" + out;
  if (out[0] == '.') out[0] = '_';
  return out + ".mlckpt";
}

std::string headline_metric(LabelKind label_kind) {
  switch (label_kind) {
    case LabelKind::kRegression:
      return "RMSE";
    case LabelKind::kMulticlass:
      return "accuracy";
    case LabelKind::kBinary:
      break;
  }
  return "AUC";
}

AdaptSummary adapt(const AdaptOptions& o) {
  if (o.all_new && !o.tasks.empty())
    throw UsageError("give either --task NAME (repeatable) or --all-new, not both");
  if (!o.all_new && o.tasks.empty())
    throw UsageError("nothing to adapt to: give --task NAME (repeatable) or --all-new");
  if (!o.support_csv.empty() && o.all_new)
    throw UsageError(
        "--support-csv gives the support rows of the tasks named with --task; it "
        "cannot be combined with --all-new");
  if (!o.support_csv.empty() && o.shots > 0)
    throw UsageError("--shots " + std::to_string(o.shots) +
                     ": with --support-csv every row of the task is support");
  if (o.shots < 0) throw UsageError("--shots " + std::to_string(o.shots) + ": must be >= 0");
  if (o.steps < -1)
    throw UsageError("--steps " + std::to_string(o.steps) + ": must be >= 0 (-1: the run's)");
  if (o.inner_lr < 0 || !std::isfinite(o.inner_lr))
    throw UsageError("--inner-lr " + std::to_string(o.inner_lr) + ": must be > 0 (0: the run's)");
  runtime::configure_compute(o.threads);

  std::vector<std::string> overrides;
  if (o.steps >= 0) overrides.push_back("meta.adapt_steps=" + std::to_string(o.steps));
  if (o.inner_lr > 0) overrides.push_back("meta.inner_lr=" + nlohmann::json(o.inner_lr).dump());
  train::LoadedRun run = train::load_run(o.checkpoint, overrides, o.device);
  const torch::Device device = resolve_torch_device(o.device);
  meta::MetaLearner& learner = *run.learner;
  const config::Config& config = run.config;
  const LabelKind kind = run.data->tasks.kind;
  // Protonet has no inner loop: its adaptation is the support set's prototypes.
  const bool protonet = learner.algorithm() == config::Algorithm::kProtonet;
  const int steps = protonet ? 0 : config.meta.adapt_steps;
  const double inner_lr = config.meta.inner_lr;
  if (run.kind == train::kCheckpointKindAdapted)
    spdlog::warn("'{}' is already an adapted model: adapting it again starts from its weights",
                 run.checkpoint_path);
  if (learner.algorithm() == config::Algorithm::kMetaSgd && o.inner_lr > 0)
    spdlog::warn("--inner-lr is ignored: metasgd adapts with its learned per-parameter rates");
  if (protonet && o.steps > 0)
    spdlog::warn("--steps is ignored: protonet adapts by the prototypes of the support set");

  AdaptSummary summary;
  summary.source_checkpoint = run.checkpoint_path;
  summary.algorithm = learner.algorithm();
  summary.label_kind = kind;
  const fs::path out_dir =
      o.out_dir.empty() ? run_root(o.checkpoint) / "adapted" : fs::path(o.out_dir);
  summary.out_dir = out_dir.string();

  // Which tasks, each with its support (and query) encoded.
  std::vector<PreparedTask> prepared;
  std::unique_ptr<CsvSupport> csv;
  const tasks::TaskSet& run_tasks = run.data->tasks;
  auto role_in_run = [&](const std::string& name) -> std::string {
    const tasks::Task* t = run_tasks.find(name);
    return t ? tasks::role_name(t->role) : "unseen";
  };
  if (!o.support_csv.empty()) {
    csv = load_support_csv(o.support_csv, config, run.data->features);
    const auto dense = run.data->features.dense_dim();
    const auto ids = run.data->features.id_fields();
    for (const auto& name : o.tasks) {
      const tasks::Task* task = csv->tasks.find(name);
      if (!task) unknown_task(name, csv->tasks, "the support CSV '" + o.support_csv + "'");
      PreparedTask p{name, role_in_run(name), o.support_csv, {}, 0, {}, nullptr};
      std::vector<std::size_t> all(task->examples.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
      std::vector<std::int32_t> classes;
      if (kind == LabelKind::kMulticlass) {
        for (const auto& e : task->examples) classes.push_back(static_cast<std::int32_t>(e.label));
        std::sort(classes.begin(), classes.end());
        classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
        if (static_cast<int>(classes.size()) > config.task.label.ways)
          throw DataError("task '" + name + "' in '" + o.support_csv + "' has " +
                          std::to_string(classes.size()) +
                          " classes; the model was meta-trained for task.label.ways = " +
                          std::to_string(config.task.label.ways));
        for (auto c : classes) p.class_names.push_back(csv->log.classes.name(c));
      }
      p.batch.support = models::make_batch(csv->encoder, dense, ids, *task, all, classes);
      p.shots = p.batch.support.size();
      p.batch.query = models::make_batch(csv->encoder, dense, ids, *task, {}, classes);
      if (device.is_cuda()) p.batch.support = p.batch.support.to(device);
      prepared.push_back(std::move(p));
    }
  } else {
    std::vector<const tasks::Task*> chosen;
    if (o.all_new) {
      chosen = run_tasks.with_role(tasks::TaskRole::kNew);
      if (chosen.empty())
        throw DataError("'" + run.checkpoint_path +
                        "' held out no new tasks (split.new_tasks / split.new_fraction): name "
                        "the tasks with --task");
    } else {
      for (const auto& name : o.tasks) {
        const tasks::Task* task = run_tasks.find(name);
        if (!task) unknown_task(name, run_tasks, "the run's log");
        chosen.push_back(task);
      }
    }
    tasks::EpisodeShape shape = tasks::episode_shape(config.task);
    if (o.shots > 0) shape.support = o.shots;
    const tasks::EpisodeSampler sampler(kind, shape, config.seed);
    for (const tasks::Task* task : chosen) {
      if (std::string why = sampler.check(*task); !why.empty())
        throw DataError("task '" + task->name + "' cannot give an episode of " +
                        std::to_string(shape.support) + " support + " +
                        std::to_string(shape.query) + " query examples" +
                        (kind == LabelKind::kMulticlass ? " per class" : "") + ": " + why +
                        " (choose fewer --shots, or give the support rows with --support-csv)");
      if (task->role == tasks::TaskRole::kTrain || task->role == tasks::TaskRole::kValidation)
        spdlog::warn(
            "task '{}' was a {} task of this run: its query metrics are not a held-out "
            "measure",
            task->name, tasks::role_name(task->role));
      tasks::Episode episode = sampler.sample(*task, kAdaptEpisode);
      PreparedTask p{task->name,    tasks::role_name(task->role),
                     "episode",     meta::make_task_batch(*run.data, episode, device),
                     shape.support, {},
                     kAdaptEpisode};
      for (auto c : episode.classes) p.class_names.push_back(run.data->log.classes.name(c));
      prepared.push_back(std::move(p));
    }
  }
  std::map<std::string, std::string> file_owner;
  for (const auto& p : prepared) {
    auto [it, fresh] = file_owner.emplace(adapted_file_name(p.name), p.name);
    if (!fresh && it->second != p.name)
      throw DataError("tasks '" + it->second + "' and '" + p.name + "' would both be saved as '" +
                      (out_dir / it->first).string() +
                      "': adapt them in separate calls with --out");
    if (!fresh) throw UsageError("task '" + p.name + "' is named twice");
  }

  nlohmann::json resolved_config, features_json;
  to_json(resolved_config, config);
  to_json(features_json, run.data->features);
  for (auto& p : prepared) {
    const models::Batch& support = p.batch.support;
    const models::Batch& query = p.batch.query;
    TaskAdaptation t;
    t.task = p.name;
    t.role = p.role;
    t.support_source = p.support_source;
    t.support_size = support.size();
    t.query_size = query.size();
    t.steps = steps;
    t.inner_lr = inner_lr;
    // Protonet has no unadapted classifier (its classes are the support's prototypes), so it
    // has no "before".
    if (query.size() > 0 && !protonet) {
      torch::Tensor out = learner.adapted_outputs(support, query, 0);
      if (!all_finite(out))
        throw NumericError("task '" + p.name + "': the run's own outputs are NaN or Inf");
      t.before = measure(out, query, kind);
    }

    // The process's first adaptations start thread pools, the autograd engine and allocators
    // (tens of ms on a loaded machine): an untimed run keeps that start-up out of the time
    // reported, which is what every further task costs.
    if (&p == &prepared.front() && steps > 0) learner.adapted_parameters(support, steps);
    const auto start = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> adapted = learner.adapted_parameters(support, steps);
    if (protonet) {
      // Its adaptation is embedding the support set (the prototypes are a mean of that).
      torch::NoGradGuard no_grad;
      learner.model()->represent(support, adapted);
    }
    if (device.is_cuda()) torch::cuda::synchronize();
    t.adapt_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (const auto& w : adapted)
      if (!all_finite(w))
        throw NumericError("adapting to task '" + p.name +
                           "' diverged: its weights hold NaN or Inf after " +
                           std::to_string(steps) + " steps at inner lr " + fixed(inner_lr, 4) +
                           "; lower --inner-lr or --steps");
    if (query.size() > 0) {
      torch::Tensor out;
      if (protonet) {
        out = learner.adapted_outputs(support, query, steps);
      } else {
        torch::NoGradGuard no_grad;
        out = learner.model()->forward(query, adapted);
      }
      if (!all_finite(out))
        throw NumericError("adapting to task '" + p.name + "' diverged: NaN or Inf outputs after " +
                           std::to_string(steps) + " steps at inner lr " + fixed(inner_lr, 4) +
                           "; lower --inner-lr or --steps");
      t.after = measure(out, query, kind);
    }

    t.checkpoint = (out_dir / adapted_file_name(p.name)).string();
    train::CheckpointMeta meta;
    meta.tool_version = kToolVersion;
    meta.kind = train::kCheckpointKindAdapted;
    meta.config = resolved_config;
    meta.features = features_json;
    meta.progress = {{"task", p.name},
                     {"role", p.role},
                     {"algorithm", enum_name(learner.algorithm())},
                     {"shots", p.shots},
                     {"steps", steps},
                     {"inner_lr", inner_lr},
                     {"source_checkpoint", run.checkpoint_path},
                     {"source_progress", run.progress},
                     {"support_source", p.support_source},
                     {"episode", p.episode},
                     {"support_size", t.support_size},
                     {"query_size", t.query_size},
                     {"adapt_ms", t.adapt_ms},
                     {"before", metrics_json(t.before, summary.label_kind)},
                     {"after", metrics_json(t.after, summary.label_kind)}};
    if (kind == LabelKind::kMulticlass) meta.progress["classes"] = p.class_names;
    train::save_checkpoint(t.checkpoint, meta, [&](torch::serialize::OutputArchive& archive) {
      write_adapted_state(archive, learner, adapted, support);
    });
    spdlog::info("adapted '{}' in {:.1f} ms -> {}", p.name, t.adapt_ms, t.checkpoint);
    summary.tasks.push_back(std::move(t));
  }
  return summary;
}

nlohmann::json to_json(const AdaptSummary& s) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : s.tasks) {
    nlohmann::json j = {{"task", t.task},
                        {"role", t.role},
                        {"support_source", t.support_source},
                        {"support", t.support_size},
                        {"query", t.query_size},
                        {"steps", t.steps},
                        {"inner_lr", t.inner_lr},
                        {"adapt_ms", t.adapt_ms},
                        {"checkpoint", t.checkpoint}};
    if (t.query_size > 0) {
      j["before"] = metrics_json(t.before, s.label_kind);
      j["after"] = metrics_json(t.after, s.label_kind);
      if (s.algorithm == config::Algorithm::kProtonet)
        j["note"] = "protonet has no unadapted model: its classes are the support's prototypes";
    } else {
      j["before"] = nullptr;
      j["after"] = nullptr;
      j["note"] = "no query: every row of the support CSV is support";
    }
    tasks.push_back(std::move(j));
  }
  return {{"source_checkpoint", s.source_checkpoint},
          {"algorithm", enum_name(s.algorithm)},
          {"label_kind", tasks::label_kind_name(s.label_kind)},
          {"metric", headline_metric(s.label_kind)},
          {"out_dir", s.out_dir},
          {"tasks", tasks}};
}

std::string format_table(const AdaptSummary& s) {
  const std::string metric = headline_metric(s.label_kind);
  std::vector<std::vector<std::string>> rows = {
      {"task", "role", "support", "query", metric + " before -> after", "ms"}};
  double before_sum = 0, after_sum = 0, ms_sum = 0;
  int befores = 0, afters = 0;
  auto shown = [](double v) { return std::isfinite(v) ? fixed(v, 4) : std::string("n/a"); };
  for (const auto& t : s.tasks) {
    std::string change = "no query (support from CSV)";
    if (t.query_size > 0) {
      const double b = headline(t.before, s.label_kind), a = headline(t.after, s.label_kind);
      change = shown(b) + " -> " + shown(a);
      if (std::isfinite(b)) {
        before_sum += b;
        ++befores;
      }
      if (std::isfinite(a)) {
        after_sum += a;
        ++afters;
      }
    }
    ms_sum += t.adapt_ms;
    rows.push_back({t.task, t.role, std::to_string(t.support_size),
                    t.query_size > 0 ? std::to_string(t.query_size) : "-", change,
                    fixed(t.adapt_ms, 1)});
  }
  if (s.tasks.size() > 1)
    rows.push_back(
        {"mean", "", "", "",
         afters ? shown(befores ? before_sum / befores : NAN) + " -> " + shown(after_sum / afters)
                : "-",
         fixed(ms_sum / static_cast<double>(s.tasks.size()), 1)});
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::ostringstream out;
  out << "adapted from " << s.source_checkpoint << " (" << enum_name(s.algorithm);
  if (s.algorithm == config::Algorithm::kProtonet)
    out << ": prototypes of the support set";
  else if (!s.tasks.empty())
    out << ", " << s.tasks[0].steps << " steps at inner lr " << s.tasks[0].inner_lr;
  out << ")\n";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const bool numeric = c == 2 || c == 3 || c == 5;  // right-aligned columns
      const std::string pad(width[c] - rows[r][c].size(), ' ');
      line += (c ? "  " : "") + (numeric ? pad + rows[r][c] : rows[r][c] + pad);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  out << "adapted models in " << s.out_dir << "\n";
  return out.str();
}

}  // namespace ml::inference
