// `metalearn inspect`: profile a purchase log before training.
#include <iostream>

#include "cli/command.hpp"
#include "inspect/log_profile.hpp"
#include "inspect/text_profile.hpp"

namespace ml::cli {

void add_inspect_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "inspect",
      "Profile a purchase log: rows, bad rows, task sizes, qualifying tasks, labels, split (a "
      "text run: classes per split, duplicates, token lengths, out-of-vocabulary rate)");
  struct Options {
    ConfigOptions config;
    bool json = false;
    bool list_tasks = false;
  };
  auto options = std::make_shared<Options>();
  options->config.add_to(*command, /*with_device=*/false);
  command->add_flag("--json", options->json, "machine-readable JSON on stdout");
  command->add_flag("--tasks", options->list_tasks,
                    "list every task with its size, role and why it was dropped (a text run: "
                    "every class of each split)");
  command->callback([options] {
    config::Config config;
    if (!options->config.load(config)) return;
    if (config.text_run()) {
      const inspect::TextProfile profile = inspect::profile_text(config);
      if (options->json) {
        nlohmann::json j;
        to_json(j, profile);
        std::cout << j.dump(2) << "\n";
      } else {
        inspect::print_text_profile(profile, std::cout, options->list_tasks);
      }
      return;
    }
    inspect::LogProfile profile = inspect::profile_log(config);
    if (options->json) {
      nlohmann::json j;
      to_json(j, profile);
      if (!options->list_tasks) j.erase("tasks");
      std::cout << j.dump(2) << "\n";
    } else {
      inspect::print_profile(profile, std::cout, options->list_tasks);
    }
  });
}

}  // namespace ml::cli
