// `metalearn predict`: score rows, or recommend a task's top items for users.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>

#include "cli/command.hpp"
#include "inference/prediction.hpp"
#include "run/checkpoint.hpp"
#include "runtime/distributed.hpp"
#include "runtime/work_share.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"

namespace ml::cli {

void add_predict_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "predict",
      "Score rows of a CSV, recommend the top-K items of a task for users, or classify texts "
      "with an adapted text model");
  struct Options {
    std::string checkpoint, input, output, task, device = "auto";
    std::vector<std::string> users;
    config::InputFormat format;
    bool recommend = false;
    int top_k = 10, threads = 0;
  };
  auto o = std::make_shared<Options>();
  command
      ->add_option("--checkpoint", o->checkpoint,
                   "adapted model, or a run directory (its meta-learned init, unadapted)")
      ->required();
  command->add_option("--input", o->input,
                      "CSV rows to score (the log's columns; for an adapted text model, its "
                      "text column, and an id column kept when present); with --recommend, the "
                      "log whose items and interactions count (default: the run's log; give a "
                      "new category's rows here)");
  add_input_format_options(*command, o->format, "--input");
  command->add_option("--output", o->output, "write the CSV here (atomically) instead of stdout")
      ->check(non_empty_value());
  command->add_flag("--recommend", o->recommend, "recommend items instead of scoring rows");
  command
      ->add_option("--task", o->task,
                   "task whose items are recommended (default: an adapted model's own task; "
                   "an adapted model refuses another)")
      ->transform(as_data_names());
  command->add_option("--user", o->users, "user to recommend for (repeatable)")
      ->transform(as_data_names());
  command
      ->add_option("--top-k", o->top_k,
                   "items per user (default 10); for an adapted text model, classes per text "
                   "(default 1)")
      ->check(whole_number(1));
  add_device_option(*command, o->device);
  add_threads_option(*command, o->threads);
  command->callback([o, command] {
    // Under torchrun: the rows are shared out over the launch's ranks; rank 0 writes.
    const std::unique_ptr<runtime::ProcessGroup> group =
        runtime::join_launch_group(runtime::OtherRanksLog::kErrors);
    const runtime::WorkShare share(group.get());
    const bool writes = share.leads();
    // The ranks must be asked the same thing; each input's content is compared later.
    share.require_same("predict options",
                       {{"recommend", o->recommend},
                        {"task", o->task},
                        {"users", o->users},
                        {"top_k", command->count("--top-k") > 0 ? o->top_k : 0},
                        {"input", !o->input.empty()}},
                       "every rank of a launch needs the same predict options");
    bool text_model = false;
    share.together("checking the options", [&] {
      // Before the work: an --output that cannot be written fails now, not after the scoring.
      if (!o->output.empty() && writes) {
        // The scores replace --output atomically: written over the input, they would destroy
        // it.
        if (!o->input.empty() && same_file(o->input, o->output))
          throw UsageError("--output '" + o->output +
                           "' is the --input file; give another file name");
        check_writable(o->output);
      }
      check_input_format(o->format, o->input, "--input");
      text_model = run::is_text_run_checkpoint(o->checkpoint);
    });
    if (text_model) {
      if (o->recommend || !o->task.empty() || !o->users.empty())
        throw UsageError("--recommend, --task and --user rank a purchase log's items; '" +
                         o->checkpoint + "' is a text model: predict classifies --input's texts");
      inference::TextPredictOptions t;
      t.checkpoint = o->checkpoint;
      t.input = o->input;
      t.format = o->format;
      t.top_k = command->count("--top-k") > 0 ? o->top_k : 1;
      t.device = o->device;
      t.threads = o->threads;
      t.group = group.get();
      const auto predictions = inference::predict_texts(t);
      if (!writes) return;
      inference::write_output(o->output, std::cout, [&](std::ostream& out) {
        inference::write_text_predictions_csv(predictions, out);
      });
      if (!o->output.empty())
        spdlog::info("wrote {} prediction(s) to {}", predictions.rows.size(), o->output);
      return;
    }
    if (o->recommend) {
      // A few users' rankings: rank 0 does them alone.
      if (!writes) return;
      inference::RecommendOptions r;
      r.checkpoint = o->checkpoint;
      r.task = o->task;
      r.users = o->users;
      r.top_k = o->top_k;
      r.input = o->input;
      r.format = o->format;
      r.device = o->device;
      r.threads = o->threads;
      const auto recommendations = inference::recommend(r);
      inference::write_output(o->output, std::cout, [&](std::ostream& out) {
        inference::write_recommendations_csv(recommendations, out);
      });
      return;
    }
    if (!o->task.empty() || !o->users.empty())
      throw UsageError("--task and --user choose what --recommend ranks; add --recommend");
    if (command->count("--top-k") > 0)
      throw UsageError(
          "--top-k is the items per user of --recommend, or the classes per text of an adapted "
          "text model; scoring a purchase log's rows gives one score each: add --recommend or "
          "leave --top-k out");
    inference::PredictOptions p;
    p.checkpoint = o->checkpoint;
    p.input = o->input;
    p.format = o->format;
    p.device = o->device;
    p.threads = o->threads;
    p.group = group.get();
    const auto scores = inference::score_rows(p);
    if (!writes) return;
    inference::write_output(o->output, std::cout,
                            [&](std::ostream& out) { inference::write_scores_csv(scores, out); });
    if (!o->output.empty()) spdlog::info("wrote {} score(s) to {}", scores.rows.size(), o->output);
  });
}

}  // namespace ml::cli
