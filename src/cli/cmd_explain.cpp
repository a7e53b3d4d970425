// `metalearn explain`: Integrated Gradients attributions of a model's scores of CSV rows, and
// what adaptation changed.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/command.hpp"
#include "explain/explanation.hpp"
#include "inference/prediction.hpp"
#include "report/explanation_page.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"

namespace ml::cli {

void add_explain_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "explain",
      "Explain a model's scores of CSV rows by Integrated Gradients (Sundararajan et al. 2017): "
      "each feature's share of the score (a categorical or id field as one, text by token), and "
      "for an adapted model what adaptation changed.\n"
      "The score explained is the raw output: the binary logit (probabilities saturate; the "
      "probability is printed beside it), the regression value, or for multiclass and text "
      "models the logit of the row's predicted class (--class NAME for another). The baseline "
      "is every dense input at its training mean in the model's input space (0 after "
      "standardisation; 0 = absent for one-hot, hashed-text and embedding-table inputs), each "
      "id field's embedding at the mean of its table's rows, and for text every token replaced "
      "by the padding token's embedding with the same attention mask. A row's attributions add "
      "up to its score minus the baseline's score (completeness); the gap left by the numerical "
      "integral is reported per row, tolerated up to the larger of 5% of |score - baseline score| "
      "and 0.01");
  struct Options {
    explain::ExplainOptions explain;
    std::string output, json_out, report;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  command
      ->add_option("--checkpoint", o->explain.checkpoint,
                   "adapted model, or a run directory (its meta-learned init, unadapted)")
      ->required();
  command
      ->add_option("--input", o->explain.input,
                   "CSV rows to explain, as predict --input reads them (the log's columns; for an "
                   "adapted text model its text column, and an id column kept when present); "
                   "default for a model adapted to a task of its run's log: the query rows it was "
                   "adapted with")
      ->check(non_empty_value());
  add_input_format_options(*command, o->explain.format, "--input");
  command
      ->add_option("--steps", o->explain.steps,
                   "integration steps (Gauss-Legendre points) per row, 1 to 10000; more shrink "
                   "the completeness gap and take longer (each is a forward and backward pass "
                   "per row)")
      ->check(whole_number(1, explain::kMaxSteps))
      ->capture_default_str();
  command
      ->add_option("--top", o->explain.top,
                   "attributions per row in the output, largest |attribution| first")
      ->check(whole_number(1))
      ->capture_default_str();
  command
      ->add_option("--class", o->explain.class_name,
                   "multiclass and text models: the class whose logit is explained (default: each "
                   "row's predicted class)")
      ->check(non_empty_value());
  command
      ->add_option("--before", o->explain.before,
                   "the model before adaptation, compared feature by feature (default for an "
                   "adapted model: the run it records it was adapted from)")
      ->check(non_empty_value());
  command->add_option("--output", o->output, "write the CSV here (atomically) instead of stdout")
      ->check(non_empty_value());
  command
      ->add_option("--json-out", o->json_out,
                   "write everything as JSON here: every row's top attributions, the global "
                   "importance, before/after and what adaptation changed")
      ->check(non_empty_value());
  command->add_flag("--json", o->json, "print the JSON to stdout instead of the CSV");
  command
      ->add_option("--report", o->report,
                   "write a self-contained HTML page with bar charts here: global importance, "
                   "before vs after adaptation, the highest-scored rows")
      ->check(non_empty_value());
  add_device_option(*command, o->explain.device);
  add_threads_option(*command, o->explain.threads);
  command->callback([o] {
    check_input_format(o->explain.format, o->explain.input, "--input");
    if (o->json && !o->output.empty())
      throw UsageError(
          "--json prints the JSON to stdout and --output writes the CSV to a file; "
          "give one (--json-out FILE writes the JSON beside the CSV)");
    for (const auto& [option, path] : {std::pair<const char*, std::string>{"--output", o->output},
                                       {"--json-out", o->json_out},
                                       {"--report", o->report}})
      if (!path.empty()) o->explain.outputs.emplace_back(option, path);
    const explain::Explanation e = explain::explain(o->explain);
    const int top = o->explain.top;
    if (!o->json_out.empty())
      write_file_atomically(
          o->json_out, [&](std::ostream& out) { out << explain::to_json(e, top).dump(2) << "\n"; });
    if (!o->report.empty()) report::write_explanation_report(e, top, o->report);
    if (o->json) {
      std::cout << explain::to_json(e, top).dump(2) << "\n";
    } else {
      inference::write_output(o->output, std::cout, [&](std::ostream& out) {
        explain::write_explanation_csv(e, top, out);
      });
    }
    for (const auto& [option, path] : o->explain.outputs)
      spdlog::info("wrote {} ({})", path, option);
  });
}

}  // namespace ml::cli
