// The run's adaptation setting chosen on validation tasks: see adaptation_choice.hpp.
#include "eval/adaptation_choice.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "config/choices.hpp"
#include "config/config.hpp"
#include "eval/cold_start.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::eval {

std::optional<run::ValidatedAdaptation> choose_adaptation(const config::Config& config,
                                                          const std::string& device, int threads,
                                                          std::string* why_not) {
  const config::MetaConfig& meta = config.meta;
  // Nothing chosen: said where a user sees it, since adapt falls back to the config's guesses.
  auto none = [&](const std::string& why,
                  bool expected) -> std::optional<run::ValidatedAdaptation> {
    const std::string text = "no adaptation setting chosen on validation tasks: " + why +
                             "; adapt uses meta.adapt_steps and meta.inner_lr";
    if (expected)
      spdlog::info("{}", text);
    else
      spdlog::warn("{}", text);
    if (why_not) *why_not = why;
    return std::nullopt;
  };
  if (meta.algorithm == config::Algorithm::kScratch)
    return none("scratch is a baseline without a meta-learned init", true);
  if (config.task.support == config::kSupportAll)
    // eval's grid is K-shot; a K chosen for "all" would be applied to supports of another size.
    return none("task.support = \"all\" is not one of eval's K-shot sizes", true);
  ColdStartOptions o;
  o.checkpoint = config.run.dir;
  o.task_role = "validation";
  o.shots = {config.task.support};
  o.steps = {0, 1, 2, 3, 5, 10, 20, meta.inner_steps, meta.adapt_steps};
  std::sort(o.steps.begin(), o.steps.end());
  o.steps.erase(std::unique(o.steps.begin(), o.steps.end()), o.steps.end());
  // A config's step count beyond what adapt accepts is no candidate (eval would refuse it).
  o.steps.erase(std::upper_bound(o.steps.begin(), o.steps.end(), run::kMaxAdaptSteps),
                o.steps.end());
  o.inner_lrs = adaptation_lr_grid(meta.inner_lr);
  o.baseline_lrs = o.inner_lrs;  // a run trained as pretrain is a baseline family
  // The run's method as eval names it: fomaml where maml fell back to first order; the
  // adaptation.json below keeps the config's name, which adapt checks.
  config::Config trained = config;
  run::apply_recorded_algorithm(
      trained, run::read_checkpoint_meta(run::resolve_checkpoint_path(config.run.dir)));
  const std::string method = enum_name(trained.meta.algorithm);
  o.methods = {method};
  o.pretrain = false;
  o.episodes = kChoiceEpisodes;
  o.device = device;
  o.threads = threads;
  ColdStartResult result;
  try {
    result = run_cold_start(o);
  } catch (const DataError& e) {
    return none(e.what(), false);
  }
  const Choice* choice = result.choice(method, config.task.support);
  if (!choice) return none("every setting diverged on the validation tasks", false);
  const MethodInfo* info = result.method(choice->method);
  run::ValidatedAdaptation a;
  a.method = enum_name(meta.algorithm);
  a.config = run::validated_config_of(run::read_checkpoint_meta(result.checkpoint_path).config);
  a.metric = result.metrics.front().name;
  a.episodes = o.episodes;
  a.steps_grid = o.steps;
  for (const auto& m : result.method_info) a.inner_lr_grid.push_back(m.inner_lr);
  run::ValidatedSetting s;
  s.shots = choice->shots;
  s.steps = choice->steps;
  s.inner_lr = info ? info->inner_lr : meta.inner_lr;
  s.value = choice->validation.mean;
  s.half_width = choice->validation.half_width;
  s.tasks = static_cast<int>(choice->validation.n);
  a.settings.push_back(s);
  const std::string path = run::RunLayout(config.run.dir).validated_adaptation().string();
  run::write_validated_adaptation(path, a);
  const std::string metric = result.metrics.front().title;
  spdlog::info(
      "adaptation chosen on {} validation tasks x {} episodes at K={}: {}{} ({} {:.4f}); "
      "written to {}, adapt uses it by default",
      s.tasks, o.episodes, s.shots, count_of(s.steps, "step"),
      std::isfinite(s.inner_lr) ? " at inner lr " + short_number(s.inner_lr) : "", metric, s.value,
      path);
  if (s.tasks < kFewValidationTasks)
    spdlog::warn(
        "the adaptation setting was chosen on only {}: its {} is {:.4f} {}, and settings "
        "closer than that cannot be told apart on so few tasks; raise "
        "split.validation_fraction (now {}) for more validation tasks",
        count_of(s.tasks, "validation task"), metric, s.value,
        std::isfinite(s.half_width) ? fmt::format("± {:.4f} (95% CI half width)", s.half_width)
                                    : std::string("(no CI: one task)"),
        short_number(config.split.validation_fraction));
  return a;
}

}  // namespace ml::eval
