// `metalearn train`: meta-train on the base tasks of a config.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "eval/adaptation_choice.hpp"
#include "run/run_layout.hpp"
#include "runtime/distributed.hpp"
#include "train/model_selection.hpp"
#include "train/trainer.hpp"
#include "util/strings.hpp"

namespace ml::cli {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

// "5 steps at inner lr 0.3"; metasgd adapts with its learned rates, protonet by prototypes.
std::string adaptation_text(config::Algorithm algorithm, int steps, double inner_lr) {
  if (algorithm == config::Algorithm::kProtonet) return "the support's prototypes";
  std::string text = count_of(steps, "step");
  if (algorithm == config::Algorithm::kMetaSgd) return text + " at its learned rates";
  if (std::isfinite(inner_lr)) text += " at inner lr " + short_number(inner_lr);
  return text;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* command = app.add_subcommand("train", "Meta-train a model on the base tasks of a config");
  struct Options {
    ConfigOptions config;
    train::TrainOptions train;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  options->config.add_to(*command, /*with_device=*/true);
  command->add_flag("--resume", options->train.resume,
                    "continue the run in run.dir from its latest checkpoint");
  command
      ->add_option("--stop-after", options->train.stop_after,
                   "stop after this many meta-iterations in this call (0 = run to the end)")
      ->check(whole_number(0));
  command->add_flag("--json", options->json, "machine-readable summary on stdout");
  command->callback([options] {
    config::Config config;
    if (!options->config.load(config)) return;
    // Under torchrun: data-parallel over the launch's ranks, whose rank 0 alone reports.
    const std::unique_ptr<runtime::ProcessGroup> group = runtime::join_launch_group();
    options->train.group = group.get();
    train::TrainSummary s = train::run_training(config, options->train);
    if (group && group->rank() != 0) return;
    // Only a complete run: a run stopped early chooses when a later --resume completes it, and
    // a finished run resumed again keeps the choice it made then.
    std::optional<run::ValidatedAdaptation> adaptation;
    std::string not_chosen;
    const bool chosen_before =
        s.already_finished &&
        std::filesystem::exists(run::RunLayout(s.run_dir).validated_adaptation());
    if (config.text_run())
      not_chosen =
          "a text run's: adapt and eval choose theirs on the validation classes for the classes "
          "at hand";
    else if (s.iterations >= config.meta.iterations && !chosen_before)
      adaptation = eval::choose_adaptation(config, config.run.device.name(), config.run.threads,
                                           &not_chosen);
    nlohmann::json chosen;
    if (adaptation) {
      const run::ValidatedSetting& v = adaptation->settings.front();
      chosen = {{"shots", v.shots},
                {"steps", v.steps},
                {"inner_lr", number_or_null(v.inner_lr)},
                {"metric", adaptation->metric},
                {"validation_value", v.value},
                {"validation_half_width", number_or_null(v.half_width)},
                {"validation_tasks", v.tasks},
                {"validation_episodes", adaptation->episodes}};
    }
    nlohmann::json j = {{"adaptation", chosen},
                        {"adaptation_not_chosen",
                         not_chosen.empty() ? nlohmann::json() : nlohmann::json(not_chosen)},
                        {"run_dir", s.run_dir},
                        {"algorithm", s.algorithm},
                        {"iterations", s.iterations},
                        {"already_finished", s.already_finished},
                        {"last_loss", number_or_null(s.last_loss)},
                        {"selection_metric", enum_name(s.selection_metric)},
                        {"best_iteration", s.best_iteration},
                        {"best_validation", number_or_null(s.best_validation)},
                        {"seconds", s.seconds}};
    if (options->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "run          " << s.run_dir << "\n"
              << "algorithm    " << s.algorithm << "\n"
              << "iterations   " << s.iterations
              << (s.already_finished ? " (already finished: nothing to train)"
                                     : " in " + fixed(s.seconds, 1) + " s")
              << "\n"
              << "last loss    "
              << (std::isfinite(s.last_loss) ? fixed(s.last_loss, 4) : std::string("-")) << "\n";
    // The two lines measure on different episodes, with different adaptation settings: each
    // says which, so that their two values do not read as one measurement disagreeing.
    const config::MetaConfig& meta = config.meta;
    std::cout << "best         iteration " << s.best_iteration;
    if (std::isfinite(s.best_validation))
      std::cout << ": validation " << train::metric_label(s.selection_metric) << " "
                << fixed(s.best_validation, 4) << " (train.selection_metric), "
                << (config.text_run()
                        ? std::to_string(config.task.label.ways) + "-way episodes, " +
                              std::to_string(config.train.validation_episodes) + " for every " +
                              std::to_string(config.task.label.ways) +
                              " validation classes (each class in about " +
                              count_of(config.train.validation_episodes, "episode") + ")"
                        : count_of(config.train.validation_episodes, "episode") +
                              " per validation task")
                << " at K=" << config::support_name(config.task.support)
                << (config.text_run() && meta.algorithm == config::Algorithm::kPretrain
                        ? " by nearest class mean on the encoder (the joint head has no row for "
                          "a validation class)"
                        : " adapted with " +
                              adaptation_text(meta.algorithm, meta.adapt_steps, meta.inner_lr) +
                              " (meta.adapt_steps, meta.inner_lr)");
    else
      std::cout << " (no validation score: the last weights)";
    std::cout << "\n";
    if (adaptation) {
      const run::ValidatedSetting& v = adaptation->settings.front();
      const auto metric = enum_from_name<config::SelectionMetric>(adaptation->metric);
      std::cout << "adaptation   " << adaptation_text(meta.algorithm, v.steps, v.inner_lr)
                << " (RUN/adaptation.json, adapt's default): the best of "
                << adaptation->steps_grid.size() *
                       std::max<std::size_t>(1, adaptation->inner_lr_grid.size())
                << " settings by validation "
                << (metric ? train::metric_label(*metric) : adaptation->metric) << " "
                << fixed(v.value, 4)
                << (std::isfinite(v.half_width) ? " ± " + fixed(v.half_width, 4) : "") << ", over "
                << count_of(v.tasks, "validation task") << " x " << adaptation->episodes
                << " other episodes at K=" << v.shots << "\n";
    } else if (config.text_run()) {
      std::cout << "adaptation   chosen by adapt and eval on the validation classes for the "
                   "classes at hand (a text run's), unless adapt is given --steps or --inner-lr\n";
    } else if (!not_chosen.empty()) {
      std::cout << "adaptation   none chosen on validation tasks (" << not_chosen
                << "): adapt uses meta.adapt_steps and meta.inner_lr\n";
    }
  });
}

}  // namespace ml::cli
