// `metalearn adapt`: fine-tune a meta-trained model on new tasks' few examples.
#include "cli/command.hpp"
#include "runtime/device.hpp"

namespace ml::cli {

void add_adapt_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "adapt", "Adapt a meta-trained model to new tasks (e.g. a new category) from a few examples");
  struct Options {
    std::string checkpoint, support_csv, out, device = "auto";
    std::vector<std::string> tasks;
    bool all_new = false, json = false;
    int shots = 0, steps = -1, threads = 0;
    double inner_lr = 0;
  };
  auto o = std::make_shared<Options>();
  command->add_option("--checkpoint", o->checkpoint, "run directory or checkpoint file")->required();
  command->add_option("--task", o->tasks, "task to adapt to (repeatable)");
  command->add_flag("--all-new", o->all_new, "adapt to every held-out new task of the run");
  command->add_option("--support-csv", o->support_csv, "support examples from this CSV instead of the log");
  command->add_option("--shots", o->shots, "support examples per task; 0 = the config's task.support");
  command->add_option("--steps", o->steps, "adaptation steps; -1 = the checkpoint's setting");
  command->add_option("--inner-lr", o->inner_lr, "adaptation learning rate; 0 = the checkpoint's setting");
  command->add_option("--out", o->out, "where adapted models go; default RUN/adapted");
  command->add_option("--device", o->device, "cpu, cuda, cuda:N or auto");
  command->add_option("--threads", o->threads, "CPU threads, 0 = all cores");
  command->add_flag("--json", o->json, "machine-readable summary on stdout");
  command->callback([o] {
    runtime::resolve_device(o->device);
    not_built_yet("metalearn adapt");
  });
}

}  // namespace ml::cli
