// `metalearn train`: meta-train on the base tasks of a config.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "eval/adaptation_choice.hpp"
#include "run/run_layout.hpp"
#include "train/model_selection.hpp"
#include "train/trainer.hpp"
#include "util/strings.hpp"

namespace ml::cli {

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
    train::TrainSummary s = train::run_training(config, options->train);
    // Only a complete run: a run stopped early chooses when a later --resume completes it, and
    // a finished run resumed again keeps the choice it made then.
    std::optional<run::ValidatedAdaptation> adaptation;
    std::string not_chosen;
    const bool chosen_before =
        s.already_finished &&
        std::filesystem::exists(run::RunLayout(s.run_dir).validated_adaptation());
    if (s.iterations >= config.meta.iterations && !chosen_before)
      adaptation = eval::choose_adaptation(config, config.run.device.name(), config.run.threads,
                                           &not_chosen);
    nlohmann::json chosen;
    if (adaptation) {
      const run::ValidatedSetting& v = adaptation->settings.front();
      chosen = {
          {"shots", v.shots},
          {"steps", v.steps},
          {"inner_lr", std::isfinite(v.inner_lr) ? nlohmann::json(v.inner_lr) : nlohmann::json()},
          {"metric", adaptation->metric},
          {"validation_value", v.value},
          {"validation_tasks", v.tasks}};
    }
    auto number_or_null = [](double v) {
      return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
    };
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
              << (std::isfinite(s.last_loss) ? fixed(s.last_loss, 4) : std::string("-")) << "\n"
              << "best         iteration " << s.best_iteration
              << (std::isfinite(s.best_validation)
                      ? ", validation " + train::metric_label(s.selection_metric) + " " +
                            fixed(s.best_validation, 4) + " (train.selection_metric)"
                      : std::string(" (no validation score: the last weights)"))
              << "\n";
    if (adaptation) {
      const run::ValidatedSetting& v = adaptation->settings.front();
      std::cout << "adaptation   " << v.steps << " steps"
                << (std::isfinite(v.inner_lr) ? " at inner lr " + fixed(v.inner_lr, 4) : "")
                << ", chosen on " << v.tasks << " validation tasks at K=" << v.shots << " ("
                << adaptation->metric << " " << fixed(v.value, 4) << ")\n";
    } else if (!not_chosen.empty()) {
      std::cout << "adaptation   none chosen on validation tasks (" << not_chosen
                << "): adapt uses meta.adapt_steps and meta.inner_lr\n";
    }
  });
}

}  // namespace ml::cli
