// `metalearn train`: meta-train on the base tasks of a config.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "eval/adaptation_choice.hpp"
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
  options->config.add_to(*command, /*with_runtime=*/true);
  command->add_flag("--resume", options->train.resume,
                    "continue the run in run.dir from its latest checkpoint");
  command
      ->add_option("--stop-after", options->train.stop_after,
                   "stop after this many meta-iterations in this call (0 = run to the end)")
      ->check(CLI::NonNegativeNumber);
  command->add_flag("--json", options->json, "machine-readable summary on stdout");
  command->callback([options] {
    config::Config config;
    if (!options->config.load(config)) return;
    train::TrainSummary s = train::run_training(config, options->train);
    // Only a complete run: a run stopped early chooses when a later --resume completes it.
    std::optional<run::ValidatedAdaptation> adaptation;
    if (s.iterations >= config.meta.iterations)
      adaptation = eval::choose_adaptation(config, config.run.device.name(), config.run.threads);
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
    nlohmann::json j = {
        {"adaptation", chosen},
        {"run_dir", s.run_dir},
        {"algorithm", s.algorithm},
        {"iterations", s.iterations},
        {"last_loss", s.last_loss},
        {"best_iteration", s.best_iteration},
        {"best_validation_loss",
         std::isfinite(s.best_validation) ? nlohmann::json(s.best_validation) : nlohmann::json()},
        {"seconds", s.seconds}};
    if (options->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "run          " << s.run_dir << "\n"
              << "algorithm    " << s.algorithm << "\n"
              << "iterations   " << s.iterations << " in " << fixed(s.seconds, 1) << " s\n"
              << "last loss    " << fixed(s.last_loss, 4) << "\n"
              << "best         iteration " << s.best_iteration
              << (std::isfinite(s.best_validation)
                      ? ", validation loss " + fixed(s.best_validation, 4)
                      : std::string(" (no validation tasks)"))
              << "\n";
    if (adaptation) {
      const run::ValidatedSetting& v = adaptation->settings.front();
      std::cout << "adaptation   " << v.steps << " steps"
                << (std::isfinite(v.inner_lr) ? " at inner lr " + fixed(v.inner_lr, 4) : "")
                << ", chosen on " << v.tasks << " validation tasks at K=" << v.shots << " ("
                << adaptation->metric << " " << fixed(v.value, 4) << ")\n";
    }
  });
}

}  // namespace ml::cli
