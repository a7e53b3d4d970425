// `metalearn eval`: the cold-start protocol on held-out tasks, against the baselines.
#include "cli/command.hpp"
#include "runtime/device.hpp"

namespace ml::cli {

void add_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "eval", "Cold-start evaluation on held-out tasks: shots x steps x methods, with 95% CIs");
  struct Options {
    std::string checkpoint, json_out, report, device = "auto";
    std::vector<int> shots{1, 5, 10, 20}, steps{0, 1, 5, 10};
    int episodes = 10, threads = 0;
  };
  auto o = std::make_shared<Options>();
  command->add_option("--checkpoint", o->checkpoint, "run directory or checkpoint file")->required();
  command->add_option("--shots", o->shots, "support sizes to evaluate");
  command->add_option("--steps", o->steps, "adaptation step counts to evaluate");
  command->add_option("--episodes", o->episodes, "episodes per task");
  command->add_option("--json-out", o->json_out, "write the full results as JSON here");
  command->add_option("--report", o->report, "write a self-contained HTML report here");
  command->add_option("--device", o->device, "cpu, cuda, cuda:N or auto");
  command->add_option("--threads", o->threads, "CPU threads, 0 = all cores");
  command->callback([o] {
    runtime::resolve_device(o->device);
    not_built_yet("metalearn eval");
  });
}

}  // namespace ml::cli
