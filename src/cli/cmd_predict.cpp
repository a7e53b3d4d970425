// `metalearn predict`: score rows, or recommend a task's top items for users.
#include "cli/command.hpp"
#include "runtime/device.hpp"

namespace ml::cli {

void add_predict_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "predict", "Score rows of a CSV, or recommend the top-K items of a task for users");
  struct Options {
    std::string checkpoint, input, output, task, device = "auto";
    std::vector<std::string> users;
    bool recommend = false;
    int top_k = 10, threads = 0;
  };
  auto o = std::make_shared<Options>();
  command->add_option("--checkpoint", o->checkpoint, "adapted model or run directory")->required();
  command->add_option("--input", o->input, "CSV rows to score (same columns as the log)");
  command->add_option("--output", o->output, "write scores here instead of stdout");
  command->add_flag("--recommend", o->recommend, "recommend items instead of scoring rows");
  command->add_option("--task", o->task, "task whose items are recommended");
  command->add_option("--user", o->users, "user to recommend for (repeatable)");
  command->add_option("--top-k", o->top_k, "items per user");
  command->add_option("--device", o->device, "cpu, cuda, cuda:N or auto");
  command->add_option("--threads", o->threads, "CPU threads, 0 = all cores");
  command->callback([o] {
    runtime::resolve_device(o->device);
    not_built_yet("metalearn predict");
  });
}

}  // namespace ml::cli
