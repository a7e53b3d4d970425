// Adapting a trained run to new tasks: see adaptation.hpp.
#include "inference/adaptation.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "inference/adapted_model.hpp"
#include "inference/text_adaptation.hpp"
#include "meta/meta_learner.hpp"
#include "metrics/metrics.hpp"
#include "models/batch.hpp"
#include "models/query_metrics.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/validated_adaptation.hpp"
#include "runtime/device.hpp"
#include "runtime/work_share.hpp"
#include "runtime/worker_pool.hpp"
#include "tasks/episode_sampler.hpp"
#include "tasks/task_set.hpp"
#include "train/data_parallel.hpp"
#include "train/model_selection.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/strings.hpp"
#include "util/text_table.hpp"
#include "util/version.hpp"

namespace ml::inference {

namespace fs = std::filesystem;
using tasks::LabelKind;

namespace {

QueryMetrics measure(const torch::Tensor& outputs, const models::Batch& query, LabelKind kind) {
  return models::query_metrics(outputs, query.target, kind);
}

bool all_finite(const torch::Tensor& t) {
  return torch::isfinite(t).all().item<bool>();
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

std::unique_ptr<CsvSupport> load_support_csv(const config::InputFile& input,
                                             const config::Config& config,
                                             const features::FeatureSpace& features) {
  auto s = std::make_unique<CsvSupport>();
  config::Config read_with;
  s->log = data::load_input_file(config, input, s->report, {}, &read_with);
  // The rows are the user's chosen examples: a cutoff meant to separate the training log's
  // history from its examples would silently drop them. (Cleared after the config is checked
  // and the file read: settings such as features.aggregate_rows need a cutoff in the run.)
  read_with.split.time_cutoff.clear();
  s->tasks = tasks::build_tasks(s->log, read_with);
  s->encoder = features.bind(s->log);
  data::warn_about_load(s->report);
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
  std::int64_t shots = 0;  // the support size asked (per class for multiclass), or kSupportAll
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

std::string headline_metric(LabelKind label_kind) {
  // train's selection metric for the label kind, so adapt's table and train's choice agree.
  return train::metric_label(
      train::resolve_selection_metric(config::SelectionMetric::kAuto, label_kind));
}

namespace {

void check_options(const AdaptOptions& o) {
  if (o.all_new && !o.tasks.empty())
    throw UsageError("give either --task NAME (repeatable) or --all-new, not both");
  if (!o.all_new && o.tasks.empty())
    throw UsageError("nothing to adapt to: give --task NAME (repeatable) or --all-new");
  if (!o.support_csv.empty() && o.all_new)
    throw UsageError(
        "--support-csv gives the support rows of the tasks named with --task; it "
        "cannot be combined with --all-new");
  if (!o.support_csv.empty() && o.shots != 0)
    throw UsageError("--shots " + config::support_name(o.shots) +
                     ": with --support-csv every row of the task is support");
  if (o.shots < 0 && o.shots != config::kSupportAll)
    throw UsageError("--shots " + std::to_string(o.shots) + ": must be >= 0 or \"all\"");
  if (o.with_training_classes)
    throw UsageError("--with-training-classes: only for a text run's checkpoint (data.text)");
  check_adaptation_settings(o);
}

}  // namespace

void check_adaptation_settings(const AdaptOptions& o) {
  if (o.steps < -1 || o.steps > run::kMaxAdaptSteps)
    throw UsageError("--steps " + std::to_string(o.steps) + ": must be from 0 to " +
                     std::to_string(run::kMaxAdaptSteps) + " (-1: the run's)");
  if (o.inner_lr < 0 || !config::fits_float(o.inner_lr))
    throw UsageError("--inner-lr " + short_number(o.inner_lr) +
                     ": must be > 0 (0: the run's) and " + config::kFitsFloat);
}

namespace {

// The run with its adaptation setting applied to its config: --steps / --inner-lr where given,
// else what was chosen on its validation tasks (RUN/adaptation.json) at the nearest K, else the
// config's meta.adapt_steps / meta.inner_lr. `source` says which, for the summary.
run::LoadedRun load_adapted_run(const AdaptOptions& o, std::string& source) {
  std::vector<std::string> overrides;
  int steps = o.steps;
  double inner_lr = o.inner_lr;
  const fs::path run_dir = run::run_dir_of(o.checkpoint);
  const std::string chosen_path = run::RunLayout(run_dir).validated_adaptation().string();
  source = o.steps >= 0 && o.inner_lr > 0
               ? "command line"
               : std::string(o.steps >= 0 || o.inner_lr > 0 ? "command line and " : "") +
                     "the config's meta.adapt_steps / meta.inner_lr (no " + chosen_path + ")";
  if (o.steps < 0 || o.inner_lr <= 0) {
    if (const auto chosen = run::read_validated_adaptation(chosen_path)) {
      const run::CheckpointMeta meta =
          run::read_checkpoint_meta(run::resolve_checkpoint_path(o.checkpoint));
      // An adapted model's config carries its own adaptation's steps and rate, so only the
      // method can be held against it; a run's checkpoint must be the run the file was made for.
      run::ValidatedAdaptation held = *chosen;
      if (meta.kind == run::kCheckpointKindAdapted) held.config = nullptr;
      run::check_validated_adaptation(chosen_path, held, meta.config);
      int shots = o.shots;
      if (shots == 0) {
        // Looked up, not at(): a config without it is refused by load_run, naming the file.
        const nlohmann::json::json_pointer at("/task/support");
        const nlohmann::json support =
            meta.config.contains(at) ? meta.config.at(at) : nlohmann::json();
        shots = support.is_number_integer() ? support.get<int>() : config::kSupportAll;
      }
      // "all" is larger than any K: the setting chosen at the largest one.
      if (shots == config::kSupportAll) shots = std::numeric_limits<int>::max();
      if (const run::ValidatedSetting* v = chosen->for_shots(shots)) {
        if (steps < 0) steps = v->steps;
        if (inner_lr <= 0 && std::isfinite(v->inner_lr)) inner_lr = v->inner_lr;
        source = "chosen on " + std::to_string(v->tasks) +
                 " validation tasks at K=" + std::to_string(v->shots) + " (" + chosen_path + ")" +
                 (o.steps >= 0 || o.inner_lr > 0 ? ", with the command line's override" : "");
      }
    }
  }
  if (steps >= 0) overrides.push_back("meta.adapt_steps=" + std::to_string(steps));
  if (inner_lr > 0) overrides.push_back("meta.inner_lr=" + nlohmann::json(inner_lr).dump());
  return run::load_run(o.checkpoint, overrides, o.device, o.threads);
}

std::string role_in_run(const tasks::TaskSet& run_tasks, const std::string& name) {
  const tasks::Task* t = run_tasks.find(name);
  return t ? tasks::role_name(t->role) : "unseen";
}

// The named tasks with every row of the support CSV as support and no query.
std::vector<PreparedTask> prepare_csv_tasks(const AdaptOptions& o, const run::LoadedRun& run,
                                            const torch::Device& device,
                                            std::unique_ptr<CsvSupport>& csv) {
  const config::Config& config = run.config;
  const LabelKind kind = run.data->tasks.kind;
  csv = load_support_csv({o.support_csv, "--support-csv", o.support_format}, config,
                         run.data->features);
  const auto dense = run.data->features.dense_dim();
  const auto ids = run.data->features.id_fields();
  std::vector<PreparedTask> prepared;
  for (const auto& name : o.tasks) {
    const tasks::Task* task = csv->tasks.find(name);
    if (!task) unknown_task(name, csv->tasks, "the support CSV '" + o.support_csv + "'");
    PreparedTask p{name, role_in_run(run.data->tasks, name), o.support_csv, {}, 0, {}, nullptr};
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
  return prepared;
}

// The named (or all new) tasks of the run's log, each with its kAdaptEpisode episode.
std::vector<PreparedTask> prepare_episode_tasks(const AdaptOptions& o, const run::LoadedRun& run,
                                                const torch::Device& device) {
  const config::Config& config = run.config;
  const LabelKind kind = run.data->tasks.kind;
  const tasks::TaskSet& run_tasks = run.data->tasks;
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
      if (!task)
        unknown_task(name, run_tasks,
                     "the run's log (for a category the log does not have, give its rows with "
                     "--support-csv ROWS.csv)");
      chosen.push_back(task);
    }
  }
  tasks::EpisodeShape shape = tasks::episode_shape(config.task);
  if (o.shots != 0) shape.support = o.shots;
  const tasks::EpisodeSampler sampler(kind, shape, config.seed);
  std::vector<PreparedTask> prepared;
  for (const tasks::Task* task : chosen) {
    if (std::string why = sampler.check(*task); !why.empty())
      throw DataError("task '" + task->name + "' cannot give an episode of " +
                      config::support_name(shape.support) + " support + " +
                      std::to_string(shape.query) + " query examples" +
                      (kind == LabelKind::kMulticlass ? " per class" : "") + ": " + why +
                      " (choose fewer --shots, or give the support rows with --support-csv)");
    if (task->role == tasks::TaskRole::kTrain || task->role == tasks::TaskRole::kValidation)
      spdlog::warn(
          "task '{}' was a {} task of this run: its query metrics are not a held-out "
          "measure",
          task->name, tasks::role_name(task->role));
    tasks::Episode episode = sampler.sample(*task, kAdaptEpisode);
    PreparedTask p{task->name,
                   tasks::role_name(task->role),
                   "episode",
                   meta::make_task_batch(run.data->features, run.data->encoder, episode, device),
                   shape.support,
                   {},
                   kAdaptEpisode};
    for (auto c : episode.classes) p.class_names.push_back(run.data->log.classes.name(c));
    prepared.push_back(std::move(p));
  }
  return prepared;
}

// Two tasks must not be saved under one file name.
void check_file_names(const std::vector<PreparedTask>& prepared, const fs::path& out_dir,
                      bool numbered) {
  std::map<std::string, std::string> file_owner;
  for (const auto& p : prepared) {
    auto [it, fresh] = file_owner.emplace(numbered ? p.name : adapted_file_name(p.name), p.name);
    if (!fresh && it->second != p.name)
      throw DataError("tasks '" + it->second + "' and '" + p.name + "' would both be saved as '" +
                      (out_dir / it->first).string() +
                      "': adapt them in separate calls with --out");
    if (!fresh) throw UsageError("task '" + p.name + "' is named twice");
  }
}

// How one adaptation is done: the run's learner, steps and learning rate.
struct Adapter {
  meta::MetaLearner& learner;
  LabelKind kind;
  bool protonet;  // no inner loop: its adaptation is the support set's prototypes
  int steps;
  double inner_lr;
  torch::Device device;
};

// Adapts to one task's support (timed) and measures its query before and after; returns the
// adapted weights. NumericError when the weights or outputs are not finite.
std::vector<torch::Tensor> adapt_task(const Adapter& a, const PreparedTask& p, bool warm_up,
                                      TaskAdaptation& t) {
  const models::Batch& support = p.batch.support;
  const models::Batch& query = p.batch.query;
  // Protonet has no unadapted classifier (its classes are the support's prototypes), so it
  // has no "before".
  if (query.size() > 0 && !a.protonet) {
    torch::Tensor out = a.learner.adapted_outputs(support, query, 0);
    if (!all_finite(out))
      throw NumericError("task '" + p.name + "': the run's own outputs are NaN or Inf");
    t.before = measure(out, query, a.kind);
  }

  // The process's first adaptations start thread pools, the autograd engine and allocators
  // (tens of ms on a loaded machine): an untimed run keeps that start-up out of the time
  // reported, which is what every further task costs.
  if (warm_up && a.steps > 0) a.learner.adapted_parameters(support, a.steps);
  const auto start = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> adapted = a.learner.adapted_parameters(support, a.steps);
  if (a.protonet) {
    // Its adaptation is embedding the support set (the prototypes are a mean of that).
    torch::NoGradGuard no_grad;
    a.learner.model()->represent(support, adapted);
  }
  if (a.device.is_cuda()) torch::cuda::synchronize();
  t.adapt_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const auto& w : adapted)
    if (!all_finite(w))
      throw NumericError("adapting to task '" + p.name +
                         "' diverged: its weights hold NaN or Inf after " +
                         count_of(a.steps, "step") + " at inner lr " + short_number(a.inner_lr) +
                         "; lower --inner-lr or --steps");
  if (query.size() > 0) {
    torch::Tensor out;
    if (a.protonet) {
      out = a.learner.adapted_outputs(support, query, a.steps);
    } else {
      torch::NoGradGuard no_grad;
      out = a.learner.model()->forward(query, adapted);
    }
    if (!all_finite(out))
      throw NumericError("adapting to task '" + p.name + "' diverged: NaN or Inf outputs after " +
                         count_of(a.steps, "step") + " at inner lr " + short_number(a.inner_lr) +
                         "; lower --inner-lr or --steps");
    t.after = measure(out, query, a.kind);
  }
  return adapted;
}

// The adapted checkpoint's record of where the model came from and how it did.
nlohmann::json adapted_progress(const PreparedTask& p, const TaskAdaptation& t,
                                const run::LoadedRun& run, LabelKind label_kind) {
  nlohmann::json progress = {
      {"task", p.name},
      {"role", p.role},
      {"algorithm", enum_name(run.learner->algorithm())},
      {"shots", p.shots == config::kSupportAll ? nlohmann::json("all") : nlohmann::json(p.shots)},
      {"steps", t.steps},
      {"inner_lr", t.inner_lr},
      {"source_checkpoint", run.checkpoint_path},
      {"source_progress", run.progress},
      {"support_source", p.support_source},
      {"episode", p.episode},
      {"support_size", t.support_size},
      {"query_size", t.query_size},
      {"query_checksum", rows_checksum(p.batch.query)},
      {"adapt_ms", t.adapt_ms},
      {"before", metrics_json(t.before, label_kind)},
      {"after", metrics_json(t.after, label_kind)}};
  if (run.data->tasks.kind == LabelKind::kMulticlass) progress["classes"] = p.class_names;
  return progress;
}

}  // namespace

AdaptSummary adapt(const AdaptOptions& o) {
  const runtime::WorkShare share(o.group);
  bool text_run = false;
  share.together("reading the checkpoint",
                 [&] { text_run = run::is_text_run_checkpoint(o.checkpoint); });
  if (text_run) {
    // One many-way task: nothing to share out.
    if (!share.leads()) return {};
    return adapt_text_run(o);
  }
  check_options(o);
  runtime::ThreadBudget budget = runtime::configure_compute(o.threads);
  share.share_cores(budget);
  std::string settings_source;
  std::optional<run::LoadedRun> loaded;
  share.together("loading the run", [&] { loaded.emplace(load_adapted_run(o, settings_source)); });
  run::LoadedRun& run = *loaded;
  const torch::Device device = runtime::torch_device(o.device);
  meta::MetaLearner& learner = *run.learner;
  const config::Config& config = run.config;
  const LabelKind kind = run.data->tasks.kind;
  const bool protonet = learner.algorithm() == config::Algorithm::kProtonet;
  const Adapter adapter{
      learner, kind, protonet, protonet ? 0 : config.meta.adapt_steps, config.meta.inner_lr,
      device};
  if (share.sharded()) {
    // The settings each rank resolved too (the command line, RUN/adaptation.json or the
    // config): a host whose copy of the run lacks adaptation.json would adapt otherwise.
    nlohmann::json asked = {{"tasks", o.tasks},
                            {"all_new", o.all_new},
                            {"shots", o.shots},
                            {"steps", adapter.steps},
                            {"inner_lr", adapter.inner_lr}};
    nlohmann::json inputs = {{"checkpoint", file_fingerprint(run.checkpoint_path)},
                             {"data", train::data_fingerprint(run.config)}};
    if (!o.support_csv.empty()) inputs["support_csv"] = file_fingerprint(o.support_csv);
    share.require_same_request("adapt", asked, inputs);
  }
  if (run.kind == run::kCheckpointKindAdapted)
    spdlog::warn("'{}' is already an adapted model: adapting it again starts from its weights",
                 run.checkpoint_path);
  if (learner.algorithm() == config::Algorithm::kMetaSgd && o.inner_lr > 0)
    spdlog::warn("--inner-lr is ignored: metasgd adapts with its learned per-parameter rates");
  if (protonet && o.steps > 0)
    spdlog::warn("--steps is ignored: protonet adapts by the prototypes of the support set");

  AdaptSummary summary;
  summary.source_checkpoint = run.checkpoint_path;
  summary.settings_source = settings_source;
  summary.algorithm = learner.algorithm();
  summary.label_kind = kind;
  const fs::path out_dir = o.out_dir.empty()
                               ? run::RunLayout(run::run_dir_of(o.checkpoint)).adapted()
                               : fs::path(o.out_dir);
  summary.out_dir = out_dir.string();

  std::unique_ptr<CsvSupport> csv;  // the encoders of CSV tasks point into it
  std::vector<PreparedTask> prepared;
  share.together("preparing the tasks", [&] {
    prepared = o.support_csv.empty() ? prepare_episode_tasks(o, run, device)
                                     : prepare_csv_tasks(o, run, device, csv);
    check_file_names(prepared, out_dir, o.numbered_file_names);
  });

  run::CheckpointMeta meta;
  meta.tool_version = kToolVersion;
  meta.kind = run::kCheckpointKindAdapted;
  to_json(meta.config, config);
  to_json(meta.features, run.data->features);
  // Tasks are the units, each adapted as a stack of one (too small for threads inside) and
  // saved by the worker that adapted it: an adapted model can hold whole embedding tables, so
  // they are not kept until the end. Under a launch each rank adapts its share of the tasks,
  // a round of one task per worker at a time, and rank 0 writes the models the others made
  // after each round, so a rank holds at most a round's models.
  const auto [first, last] = share.mine(prepared.size());
  runtime::WorkShape work;
  work.units = device.is_cuda() ? 1 : static_cast<int>(std::max<std::size_t>(last - first, 1));
  std::int64_t rows = 1;
  for (const auto& p : prepared)
    rows = std::max(rows, p.batch.support.size() + p.batch.query.size());
  work.largest_product = learner.model()->largest_product(rows);
  const runtime::ThreadPlan threads = runtime::apply_thread_plan(budget, work, "tasks");
  runtime::WorkerPool pool(threads.workers);
  std::vector<TaskAdaptation> adapted_tasks(prepared.size());
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    const PreparedTask& p = prepared[i];
    TaskAdaptation& t = adapted_tasks[i];
    t.task = p.name;
    t.role = p.role;
    t.support_source = p.support_source;
    t.support_size = p.batch.support.size();
    t.query_size = p.batch.query.size();
    t.steps = adapter.steps;
    t.inner_lr = adapter.inner_lr;
    t.checkpoint = (out_dir / (o.numbered_file_names ? fmt::format("{:05d}.mlckpt", i + 1)
                                                     : adapted_file_name(p.name)))
                       .string();
  }
  // Every rank goes through as many rounds as the rank with the most needs (their worker
  // counts may differ); one process needs one.
  const std::size_t round_size = share.sharded() ? static_cast<std::size_t>(threads.workers)
                                                 : std::max<std::size_t>(last - first, 1);
  std::size_t rounds_needed = (last - first + round_size - 1) / round_size;
  if (share.sharded())
    rounds_needed =
        static_cast<std::size_t>(share.group()->all_max(static_cast<std::int64_t>(rounds_needed)));
  std::mutex mutex;  // guards the two below
  std::size_t saved = 0;
  std::size_t received = 0;  // rank 0: the models of other ranks it wrote
  std::set<std::thread::id> warmed_up;
  for (std::size_t round = 0; round < rounds_needed; ++round) {
    const std::size_t begin = std::min(last, first + round * round_size);
    const std::size_t end = std::min(last, begin + round_size);
    std::vector<std::string> made(end - begin);  // a rank other than 0: the models' bytes
    share.together("adapting its tasks", [&] {
      try {
        pool.run(end - begin, [&](std::size_t j) {
          bool warm_up;
          {
            const std::lock_guard<std::mutex> lock(mutex);
            // Between tasks: each model written so far is complete.
            throw_if_interrupted("adapting");
            warm_up = warmed_up.insert(std::this_thread::get_id()).second;
          }
          const PreparedTask& p = prepared[begin + j];
          TaskAdaptation& t = adapted_tasks[begin + j];
          const std::vector<torch::Tensor> adapted = adapt_task(adapter, p, warm_up, t);
          run::CheckpointMeta task_meta = meta;
          task_meta.progress = adapted_progress(p, t, run, summary.label_kind);
          const auto write_state = [&](torch::serialize::OutputArchive& archive) {
            write_adapted_state(archive, learner, adapted, p.batch.support);
          };
          if (share.leads()) {
            run::save_checkpoint(t.checkpoint, task_meta, write_state);
            spdlog::info("adapted '{}' in {:.1f} ms -> {}", p.name, t.adapt_ms, t.checkpoint);
          } else {
            made[j] = run::checkpoint_bytes(t.checkpoint, task_meta, write_state);
          }
          const std::lock_guard<std::mutex> lock(mutex);
          ++saved;
        });
      } catch (const InterruptedError&) {
        // Counted once the tasks in progress have finished and been saved.
        const int signal = interrupt_signal();
        throw InterruptedError(
            signal,
            "interrupted (" + signal_name(signal) + ") while adapting: " +
                (share.sharded() && !share.leads()
                     ? std::string("this rank's models of its current round were not "
                                   "sent to rank 0")
                     : std::to_string(saved + received) + " of " + std::to_string(prepared.size()) +
                           " task(s) saved in '" + summary.out_dir + "'"));
      }
    });
    if (!share.sharded()) continue;
    // This round's models to rank 0, which writes them: (task index, length, bytes) each.
    std::string mine;
    for (std::size_t j = 0; j < made.size(); ++j) {
      for (const std::uint64_t field :
           {static_cast<std::uint64_t>(begin + j), static_cast<std::uint64_t>(made[j].size())})
        mine.append(reinterpret_cast<const char*>(&field), sizeof field);
      mine += made[j];
    }
    const std::vector<std::string> gathered = share.gather(mine);
    for (std::size_t r = 1; r < gathered.size(); ++r) {
      const std::string& blob = gathered[r];
      for (std::size_t at = 0; at < blob.size();) {
        std::uint64_t task = 0, length = 0;
        std::memcpy(&task, blob.data() + at, sizeof task);
        std::memcpy(&length, blob.data() + at + sizeof task, sizeof length);
        at += sizeof task + sizeof length;
        const TaskAdaptation& t = adapted_tasks[task];
        run::write_checkpoint_bytes(t.checkpoint, blob.substr(at, length));
        ++received;
        at += length;
        spdlog::info("wrote '{}' (adapted by rank {}) -> {}", t.task, r, t.checkpoint);
      }
    }
  }
  if (share.sharded()) {
    // Every task's figures, for rank 0's summary: before, after, adapt_ms.
    constexpr std::size_t kWidth = 2 * train::kMetricValues + 1;
    std::vector<double> figures(prepared.size() * kWidth, 0.0);
    for (std::size_t i = first; i < last; ++i) {
      const TaskAdaptation& t = adapted_tasks[i];
      double* row = &figures[i * kWidth];
      train::write_metric_values(t.before, row);
      train::write_metric_values(t.after, row + train::kMetricValues);
      row[kWidth - 1] = t.adapt_ms;
    }
    share.fill_in(figures, kWidth, {first, last});
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      TaskAdaptation& t = adapted_tasks[i];
      const double* row = &figures[i * kWidth];
      t.before = train::read_metric_values(row);
      t.after = train::read_metric_values(row + train::kMetricValues);
      t.adapt_ms = row[kWidth - 1];
    }
  }
  if (share.leads()) summary.tasks = std::move(adapted_tasks);
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
    if (!t.classes.empty()) {
      j["classes"] = t.classes;
      j["training_classes"] = t.training_classes;
    }
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
          {"settings_source", s.settings_source},
          {"algorithm", enum_name(s.algorithm)},
          {"label_kind", tasks::label_kind_name(s.label_kind)},
          {"metric", headline_metric(s.label_kind)},
          {"out_dir", s.out_dir},
          {"tasks", tasks}};
}

std::string format_table(const AdaptSummary& s) {
  const std::string metric = headline_metric(s.label_kind);
  // A text run's adaptation is to a set of classes: how many, and how many the run trained on.
  const bool text = std::any_of(s.tasks.begin(), s.tasks.end(),
                                [](const TaskAdaptation& t) { return !t.classes.empty(); });
  std::vector<std::vector<std::string>> rows = {
      {"task", "role", "support", "query", metric + " before -> after", "ms"}};
  if (text) rows[0].insert(rows[0].begin() + 2, "classes");
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
    if (text)
      rows.back().insert(
          rows.back().begin() + 2,
          std::to_string(t.classes.size()) +
              (t.training_classes > 0 ? " (" + std::to_string(t.training_classes) + " training)"
                                      : ""));
  }
  if (s.tasks.size() > 1)
    rows.push_back(
        {"mean", "", "", "",
         afters ? shown(befores ? before_sum / befores : NAN) + " -> " + shown(after_sum / afters)
                : "-",
         fixed(ms_sum / static_cast<double>(s.tasks.size()), 1)});
  std::ostringstream out;
  out << "adapted from " << s.source_checkpoint << " (" << enum_name(s.algorithm);
  if (s.algorithm == config::Algorithm::kProtonet)
    out << ": prototypes of the support set";
  else if (!s.tasks.empty())
    out << ", " << count_of(s.tasks[0].steps, "step") << " at inner lr "
        << short_number(s.tasks[0].inner_lr) << ": " << s.settings_source;
  out << ")\n";
  // Support, query and milliseconds right-aligned.
  std::vector<Align> align{Align::kLeft,  Align::kLeft, Align::kRight,
                           Align::kRight, Align::kLeft, Align::kRight};
  if (text) align.insert(align.begin() + 2, Align::kRight);
  for (const std::string& line : align_columns(rows, align)) out << line << "\n";
  for (const auto& t : s.tasks)
    if (!t.classes.empty()) {
      // Quoted: a class name may hold commas, quotes or a line break.
      std::vector<std::string> shown;
      for (std::size_t c = 0; c < std::min<std::size_t>(t.classes.size(), 10); ++c)
        shown.push_back(quoted_value(t.classes[c]));
      out << "classes of '" << t.task << "': " << join(shown, ", ")
          << (t.classes.size() > shown.size()
                  ? ", ... (" + std::to_string(t.classes.size() - shown.size()) + " more)"
                  : "")
          << "\n";
    }
  out << "adapted models in " << s.out_dir << "\n";
  return out.str();
}

}  // namespace ml::inference
