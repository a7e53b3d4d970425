// `metalearn train`: meta-train on the base tasks of a config.
#include "cli/command.hpp"
#include "runtime/device.hpp"

namespace ml::cli {

void add_train_command(CLI::App& app) {
  auto* command = app.add_subcommand("train", "Meta-train a model on the base tasks of a config");
  struct Options {
    ConfigOptions config;
    bool resume = false;
  };
  auto options = std::make_shared<Options>();
  options->config.add_to(*command, /*with_runtime=*/true);
  command->add_flag("--resume", options->resume, "continue the run in run.dir from its latest checkpoint");
  command->callback([options] {
    config::Config config;
    if (!options->config.load(config)) return;
    runtime::resolve_device(config.run.device);  // a wrong device fails before any work
    not_built_yet("metalearn train");
  });
}

}  // namespace ml::cli
