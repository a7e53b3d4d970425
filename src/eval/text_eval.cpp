// Few-shot evaluation of text runs on held-out classes: see text_eval.hpp.
#include "eval/text_eval.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include "eval/class_adaptation_choice.hpp"
#include "eval/pretrain_baseline.hpp"
#include "meta/class_head.hpp"
#include "meta/probe_baselines.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "runtime/device.hpp"
#include "runtime/work_share.hpp"
#include "train/data_parallel.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/strings.hpp"

namespace ml::eval {

namespace {

using torch::Tensor;

// Eval's episodes: indices far from those training (iteration-based) and validation passes
// (1 << 40 on) draw.
constexpr std::uint64_t kTextEvalEpisodeBase = 1ULL << 42;

constexpr const char* kNearestClassMean = "nearest_class_mean";
constexpr const char* kLinearProbe = "linear_probe";
constexpr const char* kPretrain = "pretrain";
constexpr const char* kPretrainHead = "pretrain_head";

// Rows per forward pass over a large query set (a many-way task's thousands of texts).
constexpr std::int64_t kSliceRows = 512;

double accuracy(const Tensor& outputs, const Tensor& target) {
  return outputs.argmax(1).eq(target).to(torch::kFloat64).mean().item<double>();
}

// represent() over `batch` in slices, without a graph.
Tensor represent_all(const models::Network& model, const models::Batch& batch) {
  torch::NoGradGuard no_grad;
  const std::vector<Tensor> params = model.params();
  std::vector<Tensor> parts;
  for (std::int64_t begin = 0; begin < batch.size(); begin += kSliceRows)
    parts.push_back(
        model.represent(batch.rows(begin, std::min(batch.size(), begin + kSliceRows)), params));
  return torch::cat(parts);
}

// What the methods read: a learner and the data its tokenizer encoded (the pretrain baseline
// may have a tokenizer of its own).
struct Encoder {
  const meta::MetaLearner* learner = nullptr;
  const pipeline::TextRunData* data = nullptr;
};

// One method: its candidate settings, and the accuracy of some of them on one task (support
// labels 0..classes-1, every class present).
struct Method {
  std::string name;
  std::size_t encoder = 0;            // index into the encoders
  std::vector<std::string> settings;  // one per candidate
  std::size_t fallback = 0;           // the candidate used when the validation classes give no task
  std::function<std::vector<double>(const meta::TaskBatch&, std::int64_t classes,
                                    const std::vector<std::size_t>& which)>
      score;
};

// The classifiers fitted on the support over an encoder's representation.
Method nearest_class_mean(std::string name, std::size_t encoder, const meta::MetaLearner& learner) {
  Method m{std::move(name), encoder, {""}, 0, {}};
  m.score = [&learner](const meta::TaskBatch& b, std::int64_t classes,
                       const std::vector<std::size_t>&) {
    const auto& model = *learner.model();
    const Tensor out = meta::nearest_class_mean_outputs(
        represent_all(model, b.support), b.support.target, represent_all(model, b.query), classes);
    return std::vector<double>{accuracy(out, b.query.target)};
  };
  return m;
}

Method linear_probe(std::string name, std::size_t encoder, const meta::MetaLearner& learner) {
  Method m{std::move(name), encoder, {}, 0, {}};
  for (double l2 : meta::kLinearProbePenalties) m.settings.push_back("l2 " + short_number(l2));
  m.fallback = static_cast<std::size_t>(std::find(std::begin(meta::kLinearProbePenalties),
                                                  std::end(meta::kLinearProbePenalties), 1.0) -
                                        std::begin(meta::kLinearProbePenalties));
  m.score = [&learner](const meta::TaskBatch& b, std::int64_t classes,
                       const std::vector<std::size_t>& which) {
    const auto& model = *learner.model();
    const Tensor zs = represent_all(model, b.support), zq = represent_all(model, b.query);
    std::vector<double> out;
    for (std::size_t c : which)
      out.push_back(accuracy(
          meta::linear_probe_outputs(zs, b.support.target, zq, tasks::LabelKind::kMulticlass,
                                     classes, meta::kLinearProbePenalties[c]),
          b.query.target));
    return out;
  };
  return m;
}

// The run's own adaptation on N-way episodes at each step count of `steps` and meta.inner_lr
// (one setting for protonet), through MetaLearner::outputs_at_steps (one adaptation serves the
// grid) when the head has N rows.
Method run_method(const std::string& name, const meta::MetaLearner& learner,
                  const std::vector<int>& steps, int adapt_steps, double inner_lr) {
  Method m{name, 0, {}, 0, {}};
  const bool prototypes = learner.algorithm() == config::Algorithm::kProtonet;
  if (prototypes) {
    m.settings = {"prototypes"};
  } else {
    for (int s : steps) m.settings.push_back(count_of(s, "step"));
    const auto at = std::find(steps.begin(), steps.end(), adapt_steps);
    m.fallback =
        at == steps.end() ? steps.size() - 1 : static_cast<std::size_t>(at - steps.begin());
  }
  m.score = [&learner, steps, prototypes, inner_lr](const meta::TaskBatch& b, std::int64_t classes,
                                                    const std::vector<std::size_t>& which) {
    std::vector<double> out;
    if (classes == learner.model()->outputs() && !prototypes) {
      std::vector<int> at;
      for (std::size_t c : which) at.push_back(steps[c]);
      for (const Tensor& o : learner.outputs_at_steps(b.support, b.query, at))
        out.push_back(accuracy(o, b.query.target));
      return out;
    }
    for (std::size_t c : which) {
      const auto params =
          meta::adapt_to_classes(learner, b.support, classes, prototypes ? 0 : steps[c], inner_lr);
      out.push_back(accuracy(meta::class_outputs(learner, params, b.query), b.query.target));
    }
    return out;
  };
  return m;
}

// The run's own adaptation on the many-way task: the settings adapt chooses among too
// (eval/class_adaptation_choice.hpp), through meta::adapt_to_classes (a Proto-MAML head of M
// rows, then the run's inner loop).
Method run_many_way_method(const std::string& name, const meta::MetaLearner& learner,
                           const std::vector<int>& steps, int adapt_steps, double inner_lr) {
  Method m{name, 0, {}, 0, {}};
  const bool prototypes = learner.algorithm() == config::Algorithm::kProtonet;
  const std::vector<ClassAdaptSetting> settings =
      prototypes ? std::vector<ClassAdaptSetting>{{0, inner_lr}}
                 : class_adapt_settings(steps, inner_lr, learner.algorithm());
  for (const ClassAdaptSetting& s : settings) {
    if (s == ClassAdaptSetting{adapt_steps, inner_lr}) m.fallback = m.settings.size();
    m.settings.push_back(prototypes ? "prototypes" : setting_name(s));
  }
  m.score = [&learner, settings](const meta::TaskBatch& b, std::int64_t classes,
                                 const std::vector<std::size_t>& which) {
    std::vector<ClassAdaptSetting> chosen;
    for (std::size_t c : which) chosen.push_back(settings[c]);
    return class_adapt_accuracies(learner, b, classes, chosen);
  };
  return m;
}

// The pretrain baseline fine-tuned on the support from a head initialised on its prototypes
// (Proto-MAML's W = 2 mu, b = -|mu|^2: at 0 steps nearest class mean under squared distance)
// with `learner`'s mask, at each lr x steps of the grids (0 steps once: no lr moves it).
Method fine_tune(std::string name, std::size_t encoder, const meta::MetaLearner& learner,
                 const std::vector<double>& lrs, const std::vector<int>& steps, double default_lr,
                 int default_steps) {
  Method m{std::move(name), encoder, {}, 0, {}};
  std::vector<std::pair<double, int>> grid;
  if (std::find(steps.begin(), steps.end(), 0) != steps.end()) grid.emplace_back(0.0, 0);
  for (double lr : lrs)
    for (int s : steps)
      if (s > 0) grid.emplace_back(lr, s);
  for (const auto& [lr, s] : grid) {
    if (s > 0 && lr == default_lr && s == default_steps) m.fallback = m.settings.size();
    m.settings.push_back(s == 0 ? "0 steps"
                                : "lr " + short_number(lr) + ", " + count_of(s, "step"));
  }
  m.score = [&learner, grid](const meta::TaskBatch& b, std::int64_t classes,
                             const std::vector<std::size_t>& which) {
    std::vector<double> out;
    for (std::size_t c : which) {
      const auto params = meta::adapt_to_classes(learner, b.support, classes, grid[c].second,
                                                 grid[c].first, meta::HeadInit::kPrototypes);
      out.push_back(accuracy(meta::class_outputs(learner, params, b.query), b.query.target));
    }
    return out;
  };
  return m;
}

// scores[m][c][t]: method m's candidate which[m][c] on task t, for `count` tasks drawn by
// `draw` (each method's batch made with its encoder's data).
using Scores = std::vector<std::vector<std::vector<double>>>;

// Under a launch each rank scores its share of the tasks and every rank gets all scores.
Scores score_tasks(const std::vector<Method>& methods, const std::vector<Encoder>& encoders,
                   const std::vector<std::vector<std::size_t>>& which, std::size_t count,
                   const std::function<tasks::ClassEpisode(std::size_t)>& draw,
                   const torch::Device& device, const std::string& what,
                   const runtime::WorkShare& share) {
  Scores scores(methods.size());
  for (std::size_t m = 0; m < methods.size(); ++m)
    scores[m].assign(which[m].size(), std::vector<double>(count, NAN));
  const auto [first, last] = share.mine(count);
  for (std::size_t t = first; t < last; ++t) {
    throw_if_interrupted(what);
    const tasks::ClassEpisode episode = draw(t);
    const auto classes = static_cast<std::int64_t>(episode.classes.size());
    std::vector<std::unique_ptr<meta::TaskBatch>> batches(encoders.size());
    for (std::size_t m = 0; m < methods.size(); ++m) {
      auto& batch = batches[methods[m].encoder];
      if (!batch)
        batch = std::make_unique<meta::TaskBatch>(
            pipeline::make_text_task_batch(*encoders[methods[m].encoder].data, episode, device));
      const std::vector<double> values = methods[m].score(*batch, classes, which[m]);
      for (std::size_t c = 0; c < values.size(); ++c) scores[m][c][t] = values[c];
    }
  }
  if (share.sharded()) {
    std::size_t width = 0;
    for (const auto& candidates : which) width += candidates.size();
    std::vector<double> rows(count * width, 0.0);
    for (std::size_t t = first; t < last; ++t) {
      std::size_t column = 0;
      for (std::size_t m = 0; m < methods.size(); ++m)
        for (std::size_t c = 0; c < which[m].size(); ++c)
          rows[t * width + column++] = scores[m][c][t];
    }
    share.fill_in(rows, width, {first, last});
    for (std::size_t t = 0; t < count; ++t) {
      std::size_t column = 0;
      for (std::size_t m = 0; m < methods.size(); ++m)
        for (std::size_t c = 0; c < which[m].size(); ++c)
          scores[m][c][t] = rows[t * width + column++];
    }
  }
  return scores;
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? NAN : sum / static_cast<double>(v.size());
}

// The candidate with the best mean (the first on ties: the grids are ordered from the
// cheapest).
std::size_t best_of(const std::vector<std::vector<double>>& candidates) {
  std::size_t best = 0;
  for (std::size_t c = 1; c < candidates.size(); ++c)
    if (mean_of(candidates[c]) > mean_of(candidates[best])) best = c;
  return best;
}

std::vector<std::size_t> all_settings(const Method& m) {
  std::vector<std::size_t> all(m.settings.size());
  for (std::size_t c = 0; c < all.size(); ++c) all[c] = c;
  return all;
}

// One protocol at one K: choose each method's setting on `validation` tasks (when `chosen_on`
// tasks can be drawn there), score the new tasks once with it; the run's method (`reference`,
// or none) paired with every other.
std::vector<TextMethodScore> choose_and_score(
    const std::vector<Method>& methods, const std::vector<Encoder>& encoders, int shots,
    std::size_t count, const std::function<tasks::ClassEpisode(std::size_t)>& validation,
    const std::function<tasks::ClassEpisode(std::size_t)>& fresh, const std::string& reference,
    const torch::Device& device, const std::string& label, const runtime::WorkShare& share) {
  std::vector<std::vector<std::size_t>> which;
  std::vector<metrics::Interval> on_validation(methods.size());
  if (validation) {
    spdlog::info("{}: choosing settings on the validation classes ({} tasks)", label, count);
    std::vector<std::vector<std::size_t>> all;
    for (const Method& m : methods) all.push_back(all_settings(m));
    const Scores chosen = score_tasks(methods, encoders, all, count, validation, device,
                                      "choosing settings on the validation classes", share);
    for (std::size_t m = 0; m < methods.size(); ++m) {
      which.push_back({best_of(chosen[m])});
      on_validation[m] = metrics::mean_ci(chosen[m][which[m][0]]);
    }
  } else {
    for (const Method& m : methods) which.push_back({m.fallback});
  }
  spdlog::info("{}: scoring {} tasks of the new classes", label, count);
  const Scores scored =
      score_tasks(methods, encoders, which, count, fresh, device, "scoring the new classes", share);
  const auto ref = std::find_if(methods.begin(), methods.end(),
                                [&](const Method& m) { return m.name == reference; });
  std::vector<TextMethodScore> out;
  for (std::size_t m = 0; m < methods.size(); ++m) {
    TextMethodScore s;
    s.method = methods[m].name;
    s.setting = methods[m].settings[which[m][0]];
    s.shots = shots;
    s.accuracy = metrics::mean_ci(scored[m][0]);
    s.validation = on_validation[m];
    if (ref != methods.end() && methods[m].name != reference) {
      s.compared = true;
      s.run_minus_this = metrics::paired_difference_ci(
          scored[static_cast<std::size_t>(ref - methods.begin())][0], scored[m][0]);
    }
    out.push_back(s);
  }
  return out;
}

void check_options(const TextEvalOptions& o) {
  if (o.shots.empty() || o.steps.empty()) throw UsageError("--shots and --steps need values");
  for (int k : o.shots)
    if (k < 1) throw UsageError("--shots " + std::to_string(k) + ": must be at least 1");
  for (int k : o.many_way_shots)
    if (k < 1) throw UsageError("--many-way-shots " + std::to_string(k) + ": must be at least 1");
  for (int s : o.steps)
    if (s < 0) throw UsageError("--steps " + std::to_string(s) + ": must be at least 0");
  if (o.episodes < 1) throw UsageError("--episodes must be at least 1");
  if (o.many_way_draws < 2)
    throw UsageError("--many-way-draws " + std::to_string(o.many_way_draws) +
                     ": must be at least 2 (the interval is over draws)");
  for (double lr : o.baseline_lrs)
    if (!(lr > 0) || !config::fits_float(lr))
      throw UsageError("--baseline-lrs " + short_number(lr) + ": a learning rate must be > 0 and " +
                       config::kFitsFloat);
}

}  // namespace

TextEvalResult evaluate_text_run(const TextEvalOptions& o) {
  check_options(o);
  const runtime::WorkShare share(o.group);
  runtime::configure_compute(o.threads);
  const torch::Device device = runtime::torch_device(o.device);
  std::optional<run::TextRun> loaded;
  share.together("loading the run", [&] {
    loaded.emplace(run::load_text_run(
        o.checkpoint, device,
        "is an adapted text model (metalearn adapt); eval scores the run it came from: give the "
        "run directory"));
  });
  run::TextRun& run = *loaded;
  if (share.sharded())
    share.require_same_request("eval",
                               {{"shots", o.shots},
                                {"steps", o.steps},
                                {"episodes", o.episodes},
                                {"baseline_lrs", o.baseline_lrs},
                                {"pretrain", o.pretrain},
                                {"methods", o.methods},
                                {"many_way_shots", o.many_way_shots},
                                {"many_way_draws", o.many_way_draws}},
                               {{"checkpoint", file_fingerprint(run.checkpoint.path)},
                                {"data", train::data_fingerprint(run.config)}});
  const std::string& path = run.checkpoint.path;
  const config::Config& config = run.config;
  const std::string& tokenizer = run.tokenizer;
  const auto& data = run.data;
  const auto& learner = run.learner;

  TextEvalResult r;
  r.checkpoint = path;
  r.algorithm = enum_name(config.meta.algorithm);
  r.ways = config.task.label.ways;
  r.queries_per_class = config.task.query;
  r.episodes = o.episodes;
  r.new_classes = static_cast<std::int64_t>(data->split.new_classes.size());
  r.validation_classes = static_cast<std::int64_t>(data->split.validation.size());
  r.many_way_draws = o.many_way_draws;
  std::vector<int> steps = o.steps;
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  const bool run_is_pretrain = config.meta.algorithm == config::Algorithm::kPretrain;
  if (run_is_pretrain && !o.pretrain)
    throw UsageError("--no-pretrain: '" + path +
                     "' is itself a pretrain run, whose methods are the pretrain baselines");

  // The pretrain encoder: the run itself, or the baseline eval trains beside it.
  std::vector<Encoder> encoders{{learner.get(), data.get()}};
  std::unique_ptr<pipeline::TextRunData> pretrain_data;
  std::unique_ptr<meta::MetaLearner> pretrain_learner;
  std::size_t pretrain_encoder = 0;
  if (o.pretrain && run_is_pretrain) {
    r.pretrain_checkpoint = path;
    r.pretrain_source = "run";
  } else if (o.pretrain) {
    const std::filesystem::path run_dir = run::run_dir_of(path);
    config::Config pc =
        with_algorithm(config, config::Algorithm::kPretrain,
                       run::RunLayout(run_dir).pretrain_baseline().string(), o.threads);
    pc.run.device = runtime::parse_device(o.device);
    const PretrainBaseline baseline = ensure_pretrain_baseline(run_dir, pc, share);
    // Its best checkpoint: chosen by its trainer on the validation classes (nearest-class-mean
    // accuracy), never on the new ones.
    r.pretrain_checkpoint = baseline.checkpoints.front();
    r.pretrain_source = baseline.how;
    const run::Checkpoint pretrained = run::load_checkpoint(r.pretrain_checkpoint);
    const std::string pretrain_tokenizer = run::read_tokenizer(pretrained);
    const pipeline::TextRunData* pdata = data.get();
    if (pretrain_tokenizer != tokenizer) {
      pretrain_data = pipeline::prepare_text_run_data(pc, &pretrain_tokenizer,
                                                      run::backbone_checksum(pretrained));
      pdata = pretrain_data.get();
    }
    pretrain_learner = run::build_text_learner(pc, *pdata, device);
    pretrained.read_state(
        [&](torch::serialize::InputArchive& archive) {
          run::read_learner(archive, *pretrain_learner, r.pretrain_checkpoint);
        },
        device);
    pretrain_encoder = encoders.size();
    encoders.push_back({pretrain_learner.get(), pdata});
  }

  // The methods, the run's own first.
  std::vector<Method> methods;
  const std::string own = "[" + r.algorithm + "]";
  if (!run_is_pretrain) {
    methods.push_back(
        run_method(r.algorithm, *learner, steps, config.meta.adapt_steps, config.meta.inner_lr));
    methods.push_back(nearest_class_mean(kNearestClassMean + own, 0, *learner));
    methods.push_back(linear_probe(kLinearProbe + own, 0, *learner));
  }
  // The fine-tuning variants of the pretrain encoder: every parameter but the embeddings, or
  // the head alone.
  std::vector<std::unique_ptr<meta::MetaLearner>> fine_tuners;
  if (o.pretrain) {
    const meta::MetaLearner& p = *encoders[pretrain_encoder].learner;
    std::vector<double> lrs = o.baseline_lrs;
    lrs.push_back(config.meta.inner_lr);
    std::sort(lrs.begin(), lrs.end());
    lrs.erase(std::unique(lrs.begin(), lrs.end()), lrs.end());
    for (const auto& [name, params] :
         {std::pair{std::string(kPretrain), config::InnerParams::kDense},
          std::pair{std::string(kPretrainHead), config::InnerParams::kHead}}) {
      config::MetaConfig meta = config.meta;
      meta.algorithm = config::Algorithm::kPretrain;
      meta.inner_params = params;
      meta.inner_layers.clear();
      fine_tuners.push_back(
          std::make_unique<meta::MetaLearner>(meta, tasks::LabelKind::kMulticlass, p.model()));
      methods.push_back(fine_tune(name, pretrain_encoder, *fine_tuners.back(), lrs, steps,
                                  config.meta.inner_lr, config.meta.adapt_steps));
    }
    methods.push_back(nearest_class_mean(kNearestClassMean, pretrain_encoder, p));
    methods.push_back(linear_probe(kLinearProbe, pretrain_encoder, p));
  }
  const std::string reference = run_is_pretrain ? kPretrain : r.algorithm;
  if (!o.methods.empty()) {
    std::vector<std::string> names;
    for (const Method& m : methods) names.push_back(m.name);
    for (const std::string& name : o.methods)
      if (std::find(names.begin(), names.end(), name) == names.end())
        throw UsageError(
            "--methods " + name + ": not a method of this eval (" + join(names, ", ") +
            (o.pretrain ? "" : "; --no-pretrain leaves out those on the pretrain run") + ")");
    methods.erase(std::remove_if(methods.begin(), methods.end(),
                                 [&](const Method& m) {
                                   return std::find(o.methods.begin(), o.methods.end(), m.name) ==
                                          o.methods.end();
                                 }),
                  methods.end());
  }

  // Each K once, in the order given (--shots 5,5 would score the same K twice).
  auto distinct = [](std::vector<int> values) {
    std::vector<int> out;
    for (int v : values)
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return out;
  };
  for (int k : distinct(o.shots)) {
    tasks::ClassEpisodeShape shape = pipeline::class_episode_shape(config);
    shape.shots = k;
    const tasks::ClassEpisodeSampler validation(data->dataset, data->split.validation, "validation",
                                                shape, config.seed);
    const tasks::ClassEpisodeSampler fresh(data->dataset, data->split.new_classes, "new", shape,
                                           config.seed);
    if (std::string why = fresh.check(); !why.empty())
      throw DataError("eval at K=" + std::to_string(k) + ": " + why);
    std::function<tasks::ClassEpisode(std::size_t)> on_validation;
    if (std::string why = validation.check(); why.empty()) {
      on_validation = [&](std::size_t e) { return validation.sample(kTextEvalEpisodeBase + e); };
    } else if (r.not_chosen.empty()) {
      r.not_chosen = why;
      spdlog::warn(
          "settings not chosen on validation classes ({}): meta.adapt_steps, meta.inner_lr "
          "and an L2 of 1 are used",
          why);
    }
    const auto scores = choose_and_score(
        methods, encoders, k, static_cast<std::size_t>(o.episodes), on_validation,
        [&](std::size_t e) { return fresh.sample(kTextEvalEpisodeBase + e); }, reference, device,
        fmt::format("{}-way K={}", r.ways, k), share);
    r.scores.insert(r.scores.end(), scores.begin(), scores.end());
  }

  // On M classes the run's method chooses among the settings adapt chooses among.
  std::vector<Method> many_way_methods = methods;
  for (Method& m : many_way_methods)
    if (!run_is_pretrain && m.name == r.algorithm)
      m = run_many_way_method(r.algorithm, *learner, steps, config.meta.adapt_steps,
                              config.meta.inner_lr);
  for (int k : distinct(o.many_way_shots)) {
    ManyWayShot mw;
    mw.shots = k;
    tasks::ClassEpisodeShape shape = pipeline::class_episode_shape(config);
    shape.shots = k;
    shape.queries = tasks::kQueryRest;
    const tasks::ClassEpisodeSampler validation(data->dataset, data->split.validation, "validation",
                                                shape, config.seed);
    const tasks::ClassEpisodeSampler fresh(data->dataset, data->split.new_classes, "new", shape,
                                           config.seed);
    mw.classes = static_cast<std::int64_t>(fresh.eligible().size());
    if (mw.classes >= 2 && mw.classes < r.new_classes)
      spdlog::warn(
          "many-way at K={}: {} of the {} new classes have K + 1 = {} distinct texts; the other "
          "{} are left out of the task",
          k, mw.classes, r.new_classes, k + 1, r.new_classes - mw.classes);
    if (mw.classes < 2) {
      mw.skipped = std::to_string(mw.classes) + (mw.classes == 1 ? " new class" : " new classes") +
                   " with " + std::to_string(k + 1) +
                   " distinct texts (K support and at least one query); a many-way task needs 2";
      spdlog::warn("many-way at K={}: skipped ({})", k, mw.skipped);
      r.many_way.push_back(mw);
      continue;
    }
    std::function<tasks::ClassEpisode(std::size_t)> on_validation;
    if (validation.eligible().size() >= 2) {
      mw.validation_classes = static_cast<std::int64_t>(validation.eligible().size());
      if (mw.validation_classes < r.validation_classes)
        spdlog::warn(
            "many-way at K={}: settings are chosen on {} of the {} validation classes "
            "(the others have fewer than {} distinct texts)",
            k, mw.validation_classes, r.validation_classes, k + 1);
      on_validation = [&](std::size_t d) { return validation.many_way(kTextEvalEpisodeBase + d); };
    }
    const auto draws = static_cast<std::size_t>(o.many_way_draws);
    std::vector<double> queries(draws, 0.0);  // per draw: a rank draws its share
    const auto draw = [&](std::size_t d) {
      tasks::ClassEpisode e = fresh.many_way(kTextEvalEpisodeBase + d);
      queries[d] = static_cast<double>(e.query.size());
      return e;
    };
    mw.scores = choose_and_score(
        many_way_methods, encoders, k, draws, on_validation, draw, reference, device,
        fmt::format("{}-way (all new classes) K={}", mw.classes, k), share);
    share.fill_in(queries, 1, share.mine(draws));
    mw.queries = std::accumulate(queries.begin(), queries.end(), 0.0) / o.many_way_draws;
    r.many_way.push_back(mw);
  }
  return r;
}

namespace {

nlohmann::json interval_json(const metrics::Interval& i) {
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return nlohmann::json{{"mean", number(i.mean)},
                        {"lower", number(i.lower)},
                        {"upper", number(i.upper)},
                        {"half_width", number(i.half_width)},
                        {"n", i.n}};
}

nlohmann::json scores_json(const std::vector<TextMethodScore>& scores) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : scores) {
    nlohmann::json j = {{"method", s.method},
                        {"setting", s.setting},
                        {"shots", s.shots},
                        {"accuracy", interval_json(s.accuracy)},
                        {"validation_accuracy",
                         s.validation.n > 0 ? interval_json(s.validation) : nlohmann::json()}};
    if (s.compared) j["run_minus_this"] = interval_json(s.run_minus_this);
    out.push_back(j);
  }
  return out;
}

void score_lines(std::ostringstream& out, const std::vector<TextMethodScore>& scores,
                 const std::string& reference) {
  out << fmt::format("{:>3}  {:<24} {:<16} {:<10} {:<18} {}\n", "K", "method", "setting",
                     "validation", "accuracy", reference.empty() ? "" : reference + " minus it");
  for (const auto& s : scores)
    out << fmt::format("{:>3}  {:<24} {:<16} {:<10} {:<18} {}\n", s.shots, s.method, s.setting,
                       s.validation.n > 0 ? fmt::format("{:.3f}", s.validation.mean) : "-",
                       metrics::format_interval(s.accuracy, 3),
                       s.compared ? metrics::format_difference(s.run_minus_this, 3) : "");
}

// The method every other is paired with in `scores` ("" when none is).
std::string reference_of(const std::vector<TextMethodScore>& scores) {
  for (const auto& s : scores)
    if (!s.compared) {
      const bool others = std::any_of(scores.begin(), scores.end(),
                                      [](const TextMethodScore& t) { return t.compared; });
      return others ? s.method : "";
    }
  return "";
}

}  // namespace

nlohmann::json to_json(const TextEvalResult& r) {
  auto text_or_null = [](const std::string& s) {
    return s.empty() ? nlohmann::json() : nlohmann::json(s);
  };
  nlohmann::json many_way = nlohmann::json::array();
  for (const auto& m : r.many_way)
    many_way.push_back({{"shots", m.shots},
                        {"classes", m.classes},
                        {"validation_classes", m.validation_classes},
                        {"queries", m.queries},
                        {"skipped", text_or_null(m.skipped)},
                        {"scores", scores_json(m.scores)}});
  return {{"checkpoint", r.checkpoint},
          {"algorithm", r.algorithm},
          {"ways", r.ways},
          {"queries_per_class", r.queries_per_class},
          {"episodes", r.episodes},
          {"new_classes", r.new_classes},
          {"validation_classes", r.validation_classes},
          {"settings_not_chosen", text_or_null(r.not_chosen)},
          {"pretrain",
           {{"checkpoint", text_or_null(r.pretrain_checkpoint)},
            {"source", text_or_null(r.pretrain_source)}}},
          {"scores", scores_json(r.scores)},
          {"many_way", {{"draws", r.many_way_draws}, {"shots", many_way}}}};
}

std::string format_table(const TextEvalResult& r) {
  std::ostringstream out;
  out << fmt::format(
      "{}-way accuracy on the {} new classes ({} episodes per K, {} query texts per class; "
      "settings chosen on {} validation classes{}), 95% CIs over episodes\n",
      r.ways, r.new_classes, r.episodes, r.queries_per_class, r.validation_classes,
      r.not_chosen.empty() ? "" : ": not chosen, " + r.not_chosen);
  score_lines(out, r.scores, reference_of(r.scores));
  for (const auto& m : r.many_way) {
    out << "\n";
    if (!m.skipped.empty()) {
      out << fmt::format("all new classes at once, K={}: skipped ({})\n", m.shots, m.skipped);
      continue;
    }
    // Classes short of K + 1 distinct texts cannot take part: the header says how many did.
    const std::string which =
        m.classes == r.new_classes
            ? fmt::format("all {} new classes", m.classes)
            : fmt::format(
                  "{} of the {} new classes (the others have fewer than K + 1 = {} "
                  "distinct texts)",
                  m.classes, r.new_classes, m.shots + 1);
    out << fmt::format(
        "{} at once ({}-way), K={}: every other text of those classes as query "
        "({:.0f} per draw); settings chosen on {}; 95% CIs over {} seeded support draws\n",
        which, m.classes, m.shots, m.queries,
        m.validation_classes > 0
            ? "the " + std::to_string(m.validation_classes) + "-way task of the validation classes"
            : std::string("nothing (no validation task: defaults)"),
        r.many_way_draws);
    score_lines(out, m.scores, reference_of(m.scores));
  }
  if (!r.pretrain_source.empty())
    out << "\npretrain: " << r.pretrain_checkpoint << " (" << r.pretrain_source << ")\n";
  return out.str();
}

}  // namespace ml::eval
