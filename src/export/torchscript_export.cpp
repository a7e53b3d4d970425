// `metalearn export` as a library call: see torchscript_export.hpp.
#include "export/torchscript_export.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <system_error>

#include "export/encoded_rows.hpp"
#include "export/model_script.hpp"
#include "features/tokenizer.hpp"
#include "inference/adapted_model.hpp"
#include "models/backbone_model.hpp"
#include "models/model.hpp"
#include "models/transformer.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "runtime/device.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::exporting {

namespace {

namespace fs = std::filesystem;

// One exported model family: its module (model_script.hpp) and its rows' inputs
// (encoded_rows.hpp).
struct Family {
  ScriptInputs (*script)(const inference::ScoringModel&, torch::jit::Module&);
  EncodedRows (*encode)(const inference::ScoringModel&, const config::InputFile&, int threads);
};

Family export_family(const inference::ScoringModel& model) {
  const models::Network* net = model.learner->model().get();
  if (dynamic_cast<const models::FunctionalModelImpl*>(net) != nullptr)
    return {script_feature_model, encode_feature_rows};
  const auto text_rows = [](const inference::ScoringModel& m, const config::InputFile& input, int) {
    return encode_text_rows(m, input);
  };
  if (dynamic_cast<const models::TransformerImpl*>(net) != nullptr)
    return {script_text_model, text_rows};
  if (dynamic_cast<const models::BackboneModelImpl*>(net) != nullptr)
    return {script_backbone_model, text_rows};
  const auto& c = model.config.model;
  const std::string what = c.item_text.enabled() || c.user_sequence.enabled()
                               ? "model.item_text / model.user_sequence (the item-title and "
                                 "user-sequence encoders)"
                               : "model.type = \"" + enum_name(c.type) + "\"";
  throw NotImplementedError("'" + model.path + "': export writes the mlp, embedding_mlp, " +
                            "transformer and backbone models; this run's model uses " + what +
                            ", which export does not write yet");
}

// forward() from logits(): the scores predict gives.
struct OutputKind {
  const char* name;
  const char* forward;  // the body's expression over `y`, the logits
};
OutputKind output_kind(tasks::LabelKind kind) {
  switch (kind) {
    case tasks::LabelKind::kBinary:
      return {"probability", "torch.sigmoid(y).select(1, 0)"};
    case tasks::LabelKind::kRegression:
      return {"value", "y.select(1, 0)"};
    case tasks::LabelKind::kMulticlass:
      break;
  }
  return {"class_probabilities", "torch.softmax(y, 1)"};
}

// The attributes every exported module carries: output_kind, the other `strings`
// (model_family, algorithm, ...) and its inputs' names and shapes; and their record, with the
// weight count, in `summary`.
void describe(torch::jit::Module& module, const std::string& output_kind,
              const std::vector<std::pair<const char*, std::string>>& strings,
              const ScriptInputs& inputs, ExportSummary& summary) {
  module.register_attribute("output_kind", c10::StringType::get(), output_kind);
  for (const auto& [name, value] : strings)
    module.register_attribute(name, c10::StringType::get(), value);
  module.register_attribute("input_names", c10::ListType::ofStrings(), string_list(inputs.names));
  module.register_attribute("input_shapes", c10::ListType::ofStrings(), string_list(inputs.shapes));
  summary.output_kind = output_kind;
  summary.input_names = inputs.names;
  summary.input_shapes = inputs.shapes;
  for (const auto& p : module.parameters()) summary.parameters += p.numel();
}

// The model as a module: the family's weights and logits(), forward() and the attributes that
// say what it reads and returns.
torch::jit::Module model_module(const inference::ScoringModel& model, const Family& family,
                                ExportSummary& summary) {
  torch::jit::Module module("metalearn.ExportedModel");
  const ScriptInputs inputs = family.script(model, module);
  const OutputKind kind = output_kind(model.label_kind);
  const std::string a = inputs.names.at(0), b = inputs.names.at(1);
  module.define("def forward(self, " + a + ": Tensor, " + b + ": Tensor) -> Tensor:\n" +
                "    y = self.logits(" + a + ", " + b + ")\n    return " + kind.forward + "\n");
  const auto progress_task = model.progress.find("task");
  const std::string task = model.kind == run::kCheckpointKindAdapted &&
                                   progress_task != model.progress.end() &&
                                   progress_task->is_string()
                               ? progress_task->get<std::string>()
                               : "";
  const std::vector<std::pair<const char*, std::string>> strings = {
      {"model_family", enum_name(model.config.model.type)},
      {"algorithm", enum_name(model.learner->algorithm())},
      {"checkpoint_kind", model.kind},
      {"task", task},
      {"metalearn_version", kToolVersion}};
  module.register_attribute("class_names", c10::ListType::ofStrings(),
                            string_list(model.class_names));
  describe(module, kind.name, strings, inputs, summary);
  summary.classes = static_cast<std::int64_t>(model.class_names.size());
  return module;
}

void check_options(const ExportOptions& o) {
  const std::string& inputs = o.inputs.path;
  if (o.output.empty() && o.inputs_output.empty())
    throw UsageError(
        "nothing to write: give --output model.pt, or --inputs rows.csv with "
        "--inputs-output rows.pt, or both");
  if (!inputs.empty() && o.inputs_output.empty())
    throw UsageError("--inputs '" + inputs +
                     "' needs --inputs-output FILE, where its encoded rows are written");
  if (inputs.empty() && !o.inputs_output.empty())
    throw UsageError("--inputs-output '" + o.inputs_output +
                     "' writes the encoded rows of --inputs rows.csv: give --inputs");
  if (!o.output.empty() && !o.inputs_output.empty() && same_file(o.output, o.inputs_output))
    throw UsageError("--output and --inputs-output are both '" + o.output +
                     "'; give two file names");
  for (const auto& [option, path] :
       {std::pair<const char*, const std::string&>{"--output", o.output},
        std::pair<const char*, const std::string&>{"--inputs-output", o.inputs_output}}) {
    if (path.empty()) continue;
    if (!inputs.empty() && same_file(path, inputs))
      throw UsageError(std::string(option) + " '" + path +
                       "' is the --inputs file; give another file name");
    // Before the work: an output that cannot be written fails now.
    check_writable(path);
  }
}

// --encoder: see torchscript_export.hpp.
ExportSummary export_encoder(const ExportOptions& o) {
  if (o.output.empty())
    throw UsageError("--encoder writes the encoder's module: give --output encoder.pt");
  if (o.tokenizer_output.empty())
    throw UsageError(
        "--encoder also writes the tokenizer its token ids come from: give --tokenizer-output "
        "FILE (what model.backbone.tokenizer then names)");
  if (!o.inputs.path.empty() || !o.inputs_output.empty())
    throw UsageError(
        "--inputs: not with --encoder (the encoder's inputs are token ids: export the adapted "
        "model to encode rows)");
  if (same_file(o.output, o.tokenizer_output))
    throw UsageError("--output and --tokenizer-output are both '" + o.output +
                     "'; give two file names");
  check_writable(o.output);
  check_writable(o.tokenizer_output);
  run::TextRun run = run::load_text_run(
      o.checkpoint, torch::kCPU,
      "is an adapted model; --encoder exports a text run's encoder: give the run directory (or "
      "export the adapted model without --encoder)");
  for (const std::string& path : {o.output, o.tokenizer_output})
    if (same_file(path, run.checkpoint.path))
      throw UsageError("'" + path + "' is the checkpoint; give another file name");
  if (run.config.model.type != config::ModelType::kTransformer)
    throw NotImplementedError("'" + run.checkpoint.path +
                              "': --encoder exports a text run's transformer; this run's model "
                              "is model.type = \"" +
                              enum_name(run.config.model.type) + "\"");
  inference::ScoringModel model;
  model.path = run.checkpoint.path;
  model.kind = run.checkpoint.meta.kind;
  model.config = run.config;
  model.label_kind = tasks::LabelKind::kMulticlass;
  model.learner = std::move(run.learner);
  model.tokenizer = features::Tokenizer::from_bytes(run.tokenizer);
  torch::jit::Module module("metalearn.ExportedEncoder");
  const ScriptInputs inputs = script_text_model(model, module);
  module.define(
      "def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:\n"
      "    return self.represent(tokens, mask)\n");
  const std::int64_t dim = run.config.model.transformer.dim;
  module.register_attribute("dim", c10::IntType::get(), dim);
  const std::vector<std::pair<const char*, std::string>> strings = {
      {"model_family", enum_name(run.config.model.type)},
      {"algorithm", enum_name(model.learner->algorithm())},
      {"checkpoint_kind", model.kind},
      {"metalearn_version", kToolVersion}};
  ExportSummary summary;
  describe(module, "vectors", strings, inputs, summary);
  summary.checkpoint = model.path;
  summary.checkpoint_kind = model.kind;
  summary.family = enum_name(run.config.model.type);
  summary.vector_dim = dim;
  AtomicFile model_file(o.output), tokenizer_file(o.tokenizer_output);
  module.save(model_file.stream());
  model_file.finish();
  tokenizer_file.stream() << run.tokenizer;
  tokenizer_file.finish();
  model_file.publish();
  tokenizer_file.publish();
  return summary;
}

}  // namespace

ExportSummary export_torchscript(const ExportOptions& o) {
  if (o.encoder) return export_encoder(o);
  if (!o.tokenizer_output.empty())
    throw UsageError("--tokenizer-output '" + o.tokenizer_output +
                     "': only with --encoder (a text run's encoder and its tokenizer)");
  check_options(o);
  runtime::configure_compute(o.threads);
  const auto model = inference::load_scoring_model(o.checkpoint, "cpu", "export");
  for (const auto& [option, path] :
       {std::pair<const char*, const std::string&>{"--output", o.output},
        std::pair<const char*, const std::string&>{"--inputs-output", o.inputs_output}})
    if (!path.empty() && same_file(path, model->path))
      throw UsageError(std::string(option) + " '" + path +
                       "' is the checkpoint; give another file name");
  const Family family = export_family(*model);
  ExportSummary summary;
  summary.checkpoint = model->path;
  summary.checkpoint_kind = model->kind;
  summary.family = enum_name(model->config.model.type);

  // Everything is computed, then every file is finished before any replaces its final name:
  // an error leaves neither.
  std::optional<EncodedRows> rows;
  if (!o.inputs.path.empty()) {
    rows = family.encode(*model, o.inputs, o.threads);
    summary.rows = static_cast<std::int64_t>(rows->inputs.front().second.size(0));
    summary.rows_skipped = rows->rows_skipped;
  }
  std::optional<AtomicFile> model_file, rows_file;
  if (!o.output.empty()) {
    const torch::jit::Module module = model_module(*model, family, summary);
    model_file.emplace(o.output);
    module.save(model_file->stream());
    model_file->finish();
  }
  if (rows) {
    rows_file.emplace(o.inputs_output);
    save_encoded_rows(*rows, rows_file->stream());
    rows_file->finish();
  }
  if (model_file) model_file->publish();
  if (rows_file) rows_file->publish();
  return summary;
}

void write_export_summary(const ExportSummary& s, const ExportOptions& o, std::ostream& out) {
  if (!o.output.empty()) {
    std::string arguments;
    for (std::size_t i = 0; i < s.input_names.size(); ++i)
      arguments += std::string(i ? ", " : "") + s.input_names[i] + " " + s.input_shapes[i];
    std::string returns = s.output_kind + " [n]";
    if (s.output_kind == "probability") returns += " of the positive label";
    if (s.output_kind == "vectors")
      returns = "vectors [n, " + std::to_string(s.vector_dim) +
                "] (the encoder's: model.backbone.file of another run, method \"forward\")";
    if (s.classes > 0)
      returns = "class probabilities [n, " + std::to_string(s.classes) + "] (class_names)";
    out << "wrote " << o.output << ": the " << s.checkpoint_kind << " " << s.family << " model of "
        << s.checkpoint << ", " << with_thousands(s.parameters) << " weights\n"
        << "  model(" << arguments << ") -> " << returns << "\n";
  }
  if (!o.tokenizer_output.empty())
    out << "wrote " << o.tokenizer_output
        << ": the tokenizer of its token ids (model.backbone.tokenizer)\n";
  if (!o.inputs_output.empty())
    out << "wrote " << o.inputs_output << ": " << count_of(s.rows, "encoded row") << " of "
        << o.inputs.path
        << (s.rows_skipped > 0 ? " (" + count_of(s.rows_skipped, "row") + " skipped)" : "")
        << "; model(*rows.inputs()) scores them\n";
}

}  // namespace ml::exporting
