// Few-shot evaluation of text runs on held-out classes: see text_eval.hpp.
#include "eval/text_eval.hpp"

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <sstream>

#include "meta/probe_baselines.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "runtime/device.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/strings.hpp"

namespace ml::eval {

namespace {

using torch::Tensor;

// Eval's episodes: indices far from those training (iteration-based) and validation passes
// (1 << 40 on) draw.
constexpr std::uint64_t kTextEvalEpisodeBase = 1ULL << 42;

double accuracy(const Tensor& outputs, const Tensor& target) {
  return outputs.argmax(1).eq(target).to(torch::kFloat64).mean().item<double>();
}

constexpr const char* kNearestClassMean = "nearest_class_mean";
constexpr const char* kLinearProbe = "linear_probe";

// One episode's accuracy for every candidate setting: the run's method after each step count
// of the grid, nearest class mean, and the linear probe at each penalty.
struct EpisodeScores {
  std::vector<double> run;  // by steps grid entry
  double nearest_class_mean = NAN;
  std::vector<double> probe;  // by kLinearProbePenalties entry
};

EpisodeScores score_episode(const meta::MetaLearner& learner, const meta::TaskBatch& batch,
                            const std::vector<int>& steps, std::int64_t ways) {
  EpisodeScores s;
  for (const Tensor& out : learner.outputs_at_steps(batch.support, batch.query, steps))
    s.run.push_back(accuracy(out, batch.query.target));
  torch::NoGradGuard no_grad;
  const auto& model = *learner.model();
  const std::vector<Tensor> params = model.params();
  const Tensor zs = model.represent(batch.support, params);
  const Tensor zq = model.represent(batch.query, params);
  s.nearest_class_mean = accuracy(
      meta::nearest_class_mean_outputs(zs, batch.support.target, zq, ways), batch.query.target);
  for (double l2 : meta::kLinearProbePenalties)
    s.probe.push_back(accuracy(meta::linear_probe_outputs(zs, batch.support.target, zq,
                                                          tasks::LabelKind::kMulticlass, ways, l2),
                               batch.query.target));
  return s;
}

// Every episode of `sampler` (kTextEvalEpisodeBase + e, e < episodes), scored.
std::vector<EpisodeScores> score_split(const meta::MetaLearner& learner,
                                       const pipeline::TextRunData& data,
                                       const tasks::ClassEpisodeSampler& sampler, int episodes,
                                       const std::vector<int>& steps, std::int64_t ways,
                                       const torch::Device& device) {
  std::vector<EpisodeScores> out;
  for (int e = 0; e < episodes; ++e) {
    throw_if_interrupted("evaluating");
    const auto episode = sampler.sample(kTextEvalEpisodeBase + static_cast<std::uint64_t>(e));
    out.push_back(
        score_episode(learner, pipeline::make_text_task_batch(data, episode, device), steps, ways));
  }
  return out;
}

// The index of the best mean among candidates (the first on ties: the grids are ordered from
// the cheapest).
std::size_t best_of(const std::vector<EpisodeScores>& scores, std::size_t count,
                    const std::function<double(const EpisodeScores&, std::size_t)>& value) {
  std::size_t best = 0;
  double best_mean = -1;
  for (std::size_t c = 0; c < count; ++c) {
    double sum = 0;
    for (const auto& s : scores) sum += value(s, c);
    const double mean = sum / static_cast<double>(std::max<std::size_t>(1, scores.size()));
    if (mean > best_mean) {
      best_mean = mean;
      best = c;
    }
  }
  return best;
}

}  // namespace

TextEvalResult evaluate_text_run(const TextEvalOptions& o) {
  if (o.shots.empty() || o.steps.empty()) throw UsageError("--shots and --steps need values");
  for (int k : o.shots)
    if (k < 1) throw UsageError("--shots " + std::to_string(k) + ": must be at least 1");
  for (int s : o.steps)
    if (s < 0) throw UsageError("--steps " + std::to_string(s) + ": must be at least 0");
  if (o.episodes < 1) throw UsageError("--episodes must be at least 1");
  runtime::configure_compute(o.threads);
  const torch::Device device = runtime::torch_device(o.device);
  const std::string path = run::resolve_checkpoint_path(o.checkpoint);
  const run::Checkpoint checkpoint = run::load_checkpoint(path);
  if (checkpoint.meta.kind == run::kCheckpointKindAdapted)
    throw UsageError("'" + path +
                     "' is an adapted text model (metalearn adapt); eval scores the run it came "
                     "from: give the run directory");
  config::Config config = run::saved_config(checkpoint.meta.config, path);
  if (!config.text_run())
    throw UsageError("'" + path + "' is not a text run's checkpoint (no data.text.column)");
  const std::string tokenizer = run::read_tokenizer(checkpoint);
  const auto data = pipeline::prepare_text_run_data(config, &tokenizer);
  const auto learner = run::build_text_learner(config, *data->tokenizer, device);
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) { run::read_learner(archive, *learner, path); },
      device);

  TextEvalResult r;
  r.checkpoint = path;
  r.algorithm = enum_name(config.meta.algorithm);
  r.ways = config.task.label.ways;
  r.queries_per_class = config.task.query;
  r.episodes = o.episodes;
  r.new_classes = static_cast<std::int64_t>(data->split.new_classes.size());
  r.validation_classes = static_cast<std::int64_t>(data->split.validation.size());
  std::vector<int> steps = o.steps;
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  // Protonet adapts by prototypes: one setting.
  if (config.meta.algorithm == config::Algorithm::kProtonet) steps = {0};
  const auto ways = static_cast<std::int64_t>(r.ways);
  for (int k : o.shots) {
    tasks::ClassEpisodeShape shape = pipeline::class_episode_shape(config);
    shape.shots = k;
    const tasks::ClassEpisodeSampler validation(data->dataset, data->split.validation, "validation",
                                                shape, config.seed);
    const tasks::ClassEpisodeSampler fresh(data->dataset, data->split.new_classes, "new", shape,
                                           config.seed);
    if (std::string why = fresh.check(); !why.empty())
      throw DataError("eval at K=" + std::to_string(k) + ": " + why);
    // Chosen on the validation classes, or the run's own settings where they give no episode.
    std::size_t step_at = static_cast<std::size_t>(
        std::find(steps.begin(), steps.end(), config.meta.adapt_steps) - steps.begin());
    if (step_at == steps.size()) step_at = steps.size() - 1;
    std::size_t l2_at = 2;  // an L2 of 1
    if (std::string why = validation.check(); why.empty()) {
      spdlog::info("K={}: choosing settings on {} episodes of the {} validation classes", k,
                   o.episodes, r.validation_classes);
      const auto chosen = score_split(*learner, *data, validation, o.episodes, steps, ways, device);
      step_at = best_of(chosen, steps.size(),
                        [](const EpisodeScores& s, std::size_t c) { return s.run[c]; });
      l2_at = best_of(chosen, std::size(meta::kLinearProbePenalties),
                      [](const EpisodeScores& s, std::size_t c) { return s.probe[c]; });
    } else if (r.not_chosen.empty()) {
      r.not_chosen = why;
      spdlog::warn(
          "settings not chosen on validation classes ({}): meta.adapt_steps and an L2 "
          "of 1 are used",
          why);
    }
    spdlog::info("K={}: scoring {} episodes of the {} new classes", k, o.episodes, r.new_classes);
    const auto scored =
        score_split(*learner, *data, fresh, o.episodes, {steps[step_at]}, ways, device);
    std::vector<double> run_acc, ncm_acc, probe_acc;
    for (const auto& s : scored) {
      run_acc.push_back(s.run[0]);
      ncm_acc.push_back(s.nearest_class_mean);
      probe_acc.push_back(s.probe[l2_at]);
    }
    const bool prototypes = config.meta.algorithm == config::Algorithm::kProtonet;
    r.scores.push_back({r.algorithm,
                        prototypes ? "prototypes" : count_of(steps[step_at], "step"),
                        k,
                        metrics::mean_ci(run_acc),
                        false,
                        {}});
    r.scores.push_back({kNearestClassMean, "", k, metrics::mean_ci(ncm_acc), true,
                        metrics::paired_difference_ci(run_acc, ncm_acc)});
    r.scores.push_back({kLinearProbe, "l2 " + short_number(meta::kLinearProbePenalties[l2_at]), k,
                        metrics::mean_ci(probe_acc), true,
                        metrics::paired_difference_ci(run_acc, probe_acc)});
  }
  return r;
}

nlohmann::json to_json(const TextEvalResult& r) {
  auto interval = [](const metrics::Interval& i) {
    auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
    return nlohmann::json{{"mean", number(i.mean)},
                          {"lower", number(i.lower)},
                          {"upper", number(i.upper)},
                          {"half_width", number(i.half_width)}};
  };
  nlohmann::json scores = nlohmann::json::array();
  for (const auto& s : r.scores) {
    nlohmann::json j = {{"method", s.method},
                        {"setting", s.setting},
                        {"shots", s.shots},
                        {"accuracy", interval(s.accuracy)}};
    if (s.compared) j["run_minus_this"] = interval(s.run_minus_this);
    scores.push_back(j);
  }
  return {{"checkpoint", r.checkpoint},
          {"algorithm", r.algorithm},
          {"ways", r.ways},
          {"queries_per_class", r.queries_per_class},
          {"episodes", r.episodes},
          {"new_classes", r.new_classes},
          {"validation_classes", r.validation_classes},
          {"settings_not_chosen",
           r.not_chosen.empty() ? nlohmann::json() : nlohmann::json(r.not_chosen)},
          {"scores", scores}};
}

std::string format_table(const TextEvalResult& r) {
  std::ostringstream out;
  out << fmt::format(
      "{}-way accuracy on the {} new classes ({} episodes per K, {} query texts per class; "
      "settings chosen on {} validation classes{}), 95% CIs over episodes\n",
      r.ways, r.new_classes, r.episodes, r.queries_per_class, r.validation_classes,
      r.not_chosen.empty() ? "" : ": not chosen, " + r.not_chosen);
  out << fmt::format("{:>3}  {:<20} {:<12} {:<26} {}\n", "K", "method", "setting", "accuracy",
                     r.algorithm + " minus it (paired)");
  for (const auto& s : r.scores)
    out << fmt::format("{:>3}  {:<20} {:<12} {:<26} {}\n", s.shots, s.method, s.setting,
                       metrics::format_interval(s.accuracy, 3),
                       s.compared ? metrics::format_difference(s.run_minus_this, 3) : "");
  return out.str();
}

}  // namespace ml::eval
