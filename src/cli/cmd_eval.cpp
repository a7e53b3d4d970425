// `metalearn eval`: the cold-start protocol on held-out tasks, against the baselines.
#include <algorithm>
#include <iostream>
#include <optional>

#include <spdlog/spdlog.h>

#include "cli/command.hpp"
#include "eval/cold_start.hpp"
#include "eval/text_eval.hpp"
#include "explain/explanation.hpp"
#include "report/cold_start_page.hpp"
#include "run/checkpoint.hpp"
#include "run/validated_adaptation.hpp"
#include "runtime/distributed.hpp"
#include "runtime/work_share.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::cli {

void add_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "eval",
      "Cold-start evaluation: settings chosen on validation tasks, scored once on the new tasks "
      "against the baselines, with paired 95% CIs");
  struct Options {
    eval::ColdStartOptions eval;
    std::vector<std::string> checkpoints;
    std::string json_out, report;
    bool json = false, no_pretrain = false, importance = false;
    eval::TextEvalOptions text;
  };
  auto o = std::make_shared<Options>();
  command
      ->add_option("--checkpoint", o->checkpoints,
                   "run directory or checkpoint file, optionally named: NAME=PATH (default name: "
                   "the run's algorithm, or its folder's name when two runs share one); several "
                   "(repeated or comma-separated) are evaluated on the same episodes and must "
                   "share seed, data, task and split")
      ->required()
      ->delimiter(',');
  command
      ->add_option("--tasks", o->eval.task_role,
                   "new: choose on the validation tasks, then score the new (test) tasks once; "
                   "validation: explore the validation tasks alone (no verdict)")
      ->check(non_empty_value())
      ->capture_default_str();
  // "all" is adapt's: eval's grid compares methods at fixed support sizes.
  const CLI::Validator k_shot(
      [](std::string& value) {
        return value == "all" ? std::string(
                                    "\"all\" is adapt's; eval's grid is K-shot: whole "
                                    "numbers >= 1")
                              : std::string();
      },
      "");
  command
      ->add_option("--shots", o->eval.shots,
                   "support sizes to evaluate (a text run's default: 1,5 texts per class)")
      ->delimiter(',')
      ->check(non_empty_value())
      ->check(k_shot)
      ->check(whole_number(1, run::kMaxShots));
  command
      ->add_option("--steps", o->eval.steps,
                   "adaptation step counts to evaluate (a text run's default: 0,1,3,5,10)")
      ->delimiter(',')
      ->check(non_empty_value())
      ->check(whole_number(0, run::kMaxAdaptSteps));
  command
      ->add_option("--inner-lrs", o->eval.inner_lrs,
                   "inner learning rates the runs' methods adapt with, chosen among on validation "
                   "tasks (default: each run's meta.inner_lr / 3, x 1 and x 3, the rates train "
                   "chooses its adapt setting among)")
      ->delimiter(',')
      ->check(non_empty_value());
  command
      ->add_option("--baseline-lrs", o->eval.baseline_lrs,
                   "learning rates the pretrain baselines fine-tune with, chosen among on "
                   "validation tasks; the run's meta.inner_lr is always added")
      ->delimiter(',')
      ->check(non_empty_value())
      ->capture_default_str();
  command
      ->add_option("--episodes", o->eval.episodes,
                   "episodes per task and support size (a text run: N-way episodes per K, "
                   "default 100)")
      ->check(non_empty_value())
      ->check(whole_number(1, config::kMaxEpisodes));
  command
      ->add_option("--methods", o->eval.methods,
                   "method families to evaluate: the runs' names, pretrain, pretrain_head, "
                   "linear_probe, nearest_class_mean (multiclass), scratch (default all); a text "
                   "run's are its algorithm, nearest_class_mean[ALGO] and linear_probe[ALGO] "
                   "(on its own encoder), pretrain, pretrain_head, linear_probe, "
                   "nearest_class_mean")
      ->delimiter(',')
      ->check(non_empty_value());
  command->add_flag("--no-pretrain", o->no_pretrain,
                    "leave out the baselines built on the pretrain run (pretrain, pretrain_head, "
                    "linear_probe, nearest_class_mean; it is trained into RUN/baselines/pretrain "
                    "when not there yet)");
  command
      ->add_option("--many-way-shots", o->text.many_way_shots,
                   "text runs: K per class of the many-way task (all new classes at once, every "
                   "other text of them as query); 0 leaves the task out")
      ->delimiter(',')
      ->check(non_empty_value())
      ->check(whole_number(0, run::kMaxShots))
      ->capture_default_str();
  command
      ->add_option("--many-way-draws", o->text.many_way_draws,
                   "text runs: seeded support draws of the many-way task per K (its interval is "
                   "over draws)")
      ->check(non_empty_value())
      ->check(whole_number(2, config::kMaxEpisodes))
      ->capture_default_str();
  command->add_flag("--top-label-ranking", o->eval.top_label_ranking,
                    "also rank each user's query items as RecBole-MetaRec does: relevant = the 5 "
                    "highest-labelled query items, every user counted (metrics *_top_labels)");
  command->add_option("--json-out", o->json_out, "write the full results as JSON here")
      ->check(non_empty_value());
  command->add_flag("--json", o->json, "print the full results as JSON instead of the table");
  command
      ->add_option("--report", o->report,
                   "write a self-contained HTML report (tables, charts, training curves) "
                   "here, and its tables beside it as .md and .json (report.html -> "
                   "report.md, report.json)")
      ->check(non_empty_value());
  command->add_flag(
      "--importance", o->importance,
      "with --report, what adaptation taught each new task: every new task of the first run "
      "adapted as 'metalearn adapt' adapts all new tasks (into a temporary folder) and "
      "explained on its own query rows before and after (Integrated Gradients, as 'metalearn "
      "explain' does; docs/EXPLAIN.md); adds a section to the report and \"importance\" to "
      "its JSON");
  add_device_option(*command, o->eval.device);
  add_threads_option(*command, o->eval.threads);
  command->callback([o, command] {
    // Under torchrun: the episodes are shared out over the launch's ranks; rank 0 reports.
    const std::unique_ptr<runtime::ProcessGroup> group =
        runtime::join_launch_group(runtime::OtherRanksLog::kErrors);
    const runtime::WorkShare share(group.get());
    const bool writes = share.leads();
    const std::string first_path = eval::parse_run_argument(o->checkpoints.front()).path;
    bool text_run = false;
    share.together("checking the options", [&] {
      // Checked before the (long) evaluation, so a wrong name fails at once.
      if (writes) {
        std::vector<std::string> runs;
        for (const std::string& argument : o->checkpoints)
          runs.push_back(eval::parse_run_argument(argument).path);
        report::check_outputs(o->json_out, o->report, runs);
      }
      text_run = run::is_text_run_checkpoint(first_path);
      if (o->importance && !text_run) {
        if (o->report.empty())
          throw UsageError("--importance adds a section to the report: give --report FILE.html");
        if (o->eval.task_role == "validation")
          throw UsageError(
              "--importance goes with --tasks new (the default): it explains the "
              "new tasks once they are scored, and --tasks " +
              o->eval.task_role + " scores none");
        if (writes) explain::check_new_tasks_explainable(first_path);
      }
    });
    if (text_run) {
      // A text run: held-out classes against the baselines, N-way and many-way.
      std::vector<std::string> unused;
      for (const char* option :
           {"--tasks", "--inner-lrs", "--top-label-ranking", "--report", "--importance"})
        if (command->count(option) > 0) unused.push_back(option);
      if (o->checkpoints.size() > 1) unused.push_back("a second --checkpoint");
      if (!unused.empty())
        throw UsageError("eval of a text run (data.text) does not take " + join(unused, ", ") +
                         " yet: it scores one run's new classes (--shots, --steps, --episodes, "
                         "--baseline-lrs, --methods, --no-pretrain, --many-way-shots, "
                         "--many-way-draws, --json, --json-out)" +
                         (command->count("--importance") > 0
                              ? std::string("; what adaptation taught a text model: adapt it and "
                                            "explain the adapted model with 'metalearn explain'")
                              : std::string()));
      eval::TextEvalOptions& text = o->text;
      text.checkpoint = first_path;
      if (command->count("--shots") > 0) text.shots = o->eval.shots;
      if (command->count("--steps") > 0) text.steps = o->eval.steps;
      if (command->count("--episodes") > 0) text.episodes = o->eval.episodes;
      text.baseline_lrs = o->eval.baseline_lrs;
      text.methods = o->eval.methods;
      text.pretrain = !o->no_pretrain;
      text.many_way_shots.erase(
          std::remove(text.many_way_shots.begin(), text.many_way_shots.end(), 0),
          text.many_way_shots.end());
      text.device = o->eval.device;
      text.threads = o->eval.threads;
      text.group = group.get();
      const eval::TextEvalResult result = eval::evaluate_text_run(text);
      if (!writes) return;
      if (!o->json_out.empty())
        write_file_atomically(
            o->json_out, [&](std::ostream& out) { out << eval::to_json(result).dump(2) << "\n"; });
      if (o->json)
        std::cout << eval::to_json(result).dump(2) << "\n";
      else
        std::cout << eval::format_table(result);
      return;
    }
    // A purchase log's tasks have no classes to put into one many-way task.
    for (const char* option : {"--many-way-shots", "--many-way-draws"})
      if (command->count(option) > 0)
        throw UsageError(std::string(option) +
                         " is for a text run (data.text): its many-way task puts all new "
                         "classes into one; '" +
                         o->checkpoints.front() + "' is a purchase-log run");
    o->eval.pretrain = !o->no_pretrain;
    o->eval.checkpoint = o->checkpoints.front();
    o->eval.compare.assign(o->checkpoints.begin() + 1, o->checkpoints.end());
    o->eval.group = group.get();
    const eval::ColdStartResult result = eval::run_cold_start(o->eval);
    if (!writes) return;
    // After the evaluation, which never sees the models adapted here; before any output is
    // written, so that an interrupt leaves every output as it was.
    std::optional<explain::NewTaskImportance> importance;
    if (o->importance) try {
        importance = explain::explain_new_tasks(result.checkpoint_path, explain::kDefaultSteps,
                                                o->eval.device, o->eval.threads);
      } catch (const InterruptedError& e) {
        const bool term = e.code() == ExitCode::kTerminated;
        throw InterruptedError(term ? SIGTERM : SIGINT,
                               std::string(term ? "terminated (SIGTERM)" : "interrupted (SIGINT)") +
                                   " while explaining the new tasks (--importance): --json-out "
                                   "and --report left as they were");
      }
    if (!o->json_out.empty()) eval::write_json(result, o->json_out);
    if (!o->report.empty()) {
      const report::ReportPaths paths =
          report::write_report(result, o->report, importance ? &*importance : nullptr);
      spdlog::info("report written to {} (tables in {} and {})", paths.html, paths.markdown,
                   paths.json);
    }
    if (o->json)
      std::cout << eval::to_json(result).dump(2) << "\n";
    else
      std::cout << eval::format_table(result);
  });
}

}  // namespace ml::cli
