// `metalearn adapt`: fine-tune a meta-trained model on new tasks' few examples.
#include <iostream>

#include "cli/command.hpp"
#include "inference/adaptation.hpp"
#include "runtime/distributed.hpp"

namespace ml::cli {

void add_adapt_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "adapt", "Adapt a meta-trained model to new tasks (e.g. a new category) from a few examples");
  struct Options {
    inference::AdaptOptions adapt;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  auto& a = o->adapt;
  command->add_option("--checkpoint", a.checkpoint, "run directory or checkpoint file")->required();
  command->add_option("--task", a.tasks, "task to adapt to (repeatable)")
      ->transform(as_data_names());
  command->add_flag("--all-new", a.all_new,
                    "adapt to every held-out new task of the run (a text run: one many-way task "
                    "over all its new classes, K texts each; the other texts are the query)");
  command->add_option("--support-csv", a.support_csv,
                      "support rows of the --task from this CSV (the log's columns) instead of "
                      "an episode of the log; every row is support, so there is no query (a "
                      "text run: labelled texts, the run's text and class columns, of the "
                      "classes to adapt to)");
  command->add_flag("--with-training-classes", a.with_training_classes,
                    "text runs: add K texts of each training class of the run to the support, "
                    "so the adapted model ranks known and new classes together");
  add_input_format_options(*command, a.support_format, "--support-csv");
  command
      ->add_option("--shots", a.shots,
                   "support examples per task (per class for multiclass, and for a text run's "
                   "classes), or \"all\" (every example of the task not in the query); 0 = the "
                   "config's task.support")
      ->transform(shots_option(0))
      ->type_name("INT|all");
  command
      ->add_option("--steps", a.steps,
                   "adaptation steps; -1 = the run's choice: RUN/adaptation.json (chosen on "
                   "validation tasks when train finished, at the K nearest the support size), "
                   "else, for a run without one (every text run), its meta.adapt_steps")
      ->check(whole_number(-1, 1000000));
  command
      ->add_option("--inner-lr", a.inner_lr,
                   "adaptation learning rate; 0 = the run's choice: RUN/adaptation.json, else "
                   "its meta.inner_lr")
      ->check(non_negative_float());
  command
      ->add_option("--out", a.out_dir,
                   "folder for the adapted models (TASK.mlckpt); default RUN/adapted")
      ->check(non_empty_value());
  add_device_option(*command, a.device);
  add_threads_option(*command, a.threads);
  command->add_flag("--json", o->json, "machine-readable summary on stdout");
  command->callback([o] {
    check_input_format(o->adapt.support_format, o->adapt.support_csv, "--support-csv");
    // Under torchrun: the tasks are shared out over the launch's ranks; rank 0 reports.
    const std::unique_ptr<runtime::ProcessGroup> group =
        runtime::join_launch_group(runtime::OtherRanksLog::kErrors);
    o->adapt.group = group.get();
    inference::AdaptSummary summary = inference::adapt(o->adapt);
    if (group && group->rank() != 0) return;
    if (o->json)
      std::cout << inference::to_json(summary).dump(2) << "\n";
    else
      std::cout << inference::format_table(summary);
  });
}

}  // namespace ml::cli
