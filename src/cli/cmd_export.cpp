// `metalearn export`: a run or an adapted model as a TorchScript module, and rows as its inputs.
#include <iostream>

#include "cli/command.hpp"
#include "export/torchscript_export.hpp"

namespace ml::cli {

void add_export_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "export",
      "Write a run or an adapted model as a TorchScript module that torch.jit.load (Python or "
      "LibTorch) loads and scores, and rows encoded as its inputs");
  auto o = std::make_shared<exporting::ExportOptions>();
  o->inputs.option = "--inputs";
  command
      ->add_option("--checkpoint", o->checkpoint,
                   "adapted model, or a run directory (its meta-learned init, unadapted)")
      ->required();
  command
      ->add_option("--output", o->output,
                   "the TorchScript module's file (written atomically), e.g. model.pt")
      ->check(non_empty_value());
  command
      ->add_option("--inputs", o->inputs.path,
                   "CSV rows to encode as the module's inputs, read as predict reads the rows it "
                   "scores; needs --inputs-output")
      ->check(non_empty_value());
  add_input_format_options(*command, o->inputs.format, "--inputs");
  command
      ->add_option("--inputs-output", o->inputs_output,
                   "the encoded rows' file, a TorchScript module of tensors: "
                   "model(*rows.inputs()) scores them")
      ->check(non_empty_value());
  command->add_flag("--encoder", o->encoder,
                    "a text run's encoder (forward = the vector its head reads) for "
                    "model.backbone of another run, instead of a classifier; needs "
                    "--tokenizer-output");
  command
      ->add_option("--tokenizer-output", o->tokenizer_output,
                   "where --encoder writes its tokenizer (model.backbone.tokenizer)")
      ->check(non_empty_value());
  add_threads_option(*command, o->threads);
  command->callback([o] {
    check_input_format(o->inputs.format, o->inputs.path, "--inputs");
    const auto summary = exporting::export_torchscript(*o);
    exporting::write_export_summary(summary, *o, std::cout);
  });
}

}  // namespace ml::cli
