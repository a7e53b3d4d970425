// `metalearn config-docs` (hidden): print the config reference, docs/CONFIG.md, as Markdown.
#include <iostream>

#include "cli/command.hpp"
#include "config/config_docs.hpp"

namespace ml::cli {

void add_config_docs_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "config-docs", "Print the config reference (docs/CONFIG.md) as Markdown, from the tables");
  command->group("");  // hidden: a maintainer's tool, not part of the user-facing CLI
  command->callback([] { std::cout << config::config_reference_markdown(); });
}

}  // namespace ml::cli
