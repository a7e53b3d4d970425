// Options shared by config-driven subcommands: see command.hpp.
#include <iostream>

#include "cli/command.hpp"
#include "util/errors.hpp"

namespace ml::cli {

void ConfigOptions::add_to(CLI::App& command, bool with_runtime) {
  command.add_option("-c,--config", path, "JSON config file")->required();
  command.add_option("--set", overrides,
                     "override a config value, e.g. --set task.support=5 (repeatable; the value "
                     "is JSON or a plain string)");
  command.add_flag("--print-config", print_config,
                   "print the resolved config (defaults filled in) and exit");
  if (with_runtime) {
    command.add_option("--device", device, "cpu, cuda, cuda:N or auto (overrides run.device)");
    command.add_option("--threads", threads, "CPU threads, 0 = all cores (overrides run.threads)")
        ->check(CLI::NonNegativeNumber);
  }
}

bool ConfigOptions::load(config::Config& out) const {
  std::vector<std::string> all = overrides;
  if (!device.empty()) all.push_back("run.device=\"" + device + "\"");
  if (threads >= 0) all.push_back("run.threads=" + std::to_string(threads));
  out = config::load_config(path, all);
  if (print_config) {
    config::Json j;
    to_json(j, out);
    std::cout << j.dump(2) << "\n";
    return false;
  }
  return true;
}

}  // namespace ml::cli
