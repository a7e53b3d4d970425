// `metalearn export`: a trained run or an adapted model as a TorchScript module that
// torch.jit.load (Python or LibTorch) loads and scores without metalearn, and the encoded
// inputs of rows as a second TorchScript file, for what the module cannot compute itself.
//
// The module (docs: README "Exporting a model (TorchScript)"):
//   forward(a, b)  the scores `metalearn predict` gives: binary: P(positive) [n]; regression:
//                  the value [n]; multiclass / text: class probabilities [n, classes] (softmax)
//   logits(a, b)   the model's raw outputs [n, outputs] (binary logit, value, class logits)
//   a, b           purchase-log runs (model.type mlp, embedding_mlp): dense [n, D] float32, the
//                  raw dense features in feature_names order with NaN where a value is missing
//                  (the module standardises them and puts missing ones at the training mean),
//                  and ids [n, F] int64, the hashed user / item ids and categorical indices in
//                  id_field_names order (read only by embedding_mlp). Text runs
//                  (model.type transformer): tokens [n, L] int64 (L <= max_len, 0 = padding)
//                  and mask [n, L] bool (true on real tokens).
// plus attributes naming what it reads and returns: output_kind, class_names, input_names,
// input_shapes, model_family, algorithm, checkpoint_kind, task, metalearn_version, and per
// family feature_names / id_field_names or max_len. Weights are parameters named as in the
// checkpoint (model.*). Not inside (strings and the log): reading CSV rows, hashing ids,
// vocabularies, text hashing, aggregates and affinities over the log, the SentencePiece
// tokenizer: export's --inputs writes those encoded tensors for given rows.
//
// Torch-free: the CLI includes it.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "config/input_format.hpp"

namespace ml::exporting {

struct ExportOptions {
  std::string checkpoint;     // a run directory, a checkpoint file or an adapted model
  std::string output;         // the model's TorchScript file; "" writes none
  config::InputFile inputs;   // rows to encode (path "" = none), with --inputs' format options
  std::string inputs_output;  // the encoded rows' TorchScript file (with inputs)
  // --encoder: a text run's encoder instead of its classifier (forward = the vector its head
  // reads), for model.backbone of another run; its tokenizer goes to tokenizer_output.
  bool encoder = false;
  std::string tokenizer_output;
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget
};

// What was written, for the command's summary.
struct ExportSummary {
  std::string checkpoint;       // the resolved checkpoint file
  std::string checkpoint_kind;  // "meta" | "adapted"
  std::string family;           // model.type of the exported model
  std::string output_kind;      // "probability", "value" or "class_probabilities"
  std::vector<std::string> input_names, input_shapes;
  std::int64_t parameters = 0;              // weights in the module
  std::int64_t classes = 0;                 // multiclass / text: output columns; else 0
  std::int64_t vector_dim = 0;              // --encoder: the width of its vectors
  std::int64_t rows = 0, rows_skipped = 0;  // encoded by --inputs (skipped: data.bad_rows)
};

// With options.encoder: the transformer of a text run (meta-trained or pretrained, before
// adaptation) as a module whose forward(tokens [n, L] int64, mask [n, L] bool) returns the
// vectors [n, d] its head reads (represent(); logits() is its episode head's), with the
// attribute dim, and its tokenizer's bytes (features::Tokenizer::to_bytes) to
// options.tokenizer_output: what model.backbone.file and .tokenizer of another run read.
// UsageError without --output or --tokenizer-output or with --inputs, or for an adapted model;
// NotImplementedError for a text run of another model.type.
//
// Otherwise: loads `options.checkpoint` on the CPU and writes the module to `options.output` and/or
// the encoded rows of `options.inputs.path` to `options.inputs_output`, each atomically
// (util/atomic_file.hpp: a failure leaves no half-written file). Throws UsageError (neither
// output given, --inputs without --inputs-output or the reverse, an output that is an input,
// a model predict cannot score either: a protonet or multiclass run before adaptation, a text
// run before adaptation), CheckpointError (not a usable checkpoint), NotImplementedError (a
// model family export does not know: model.item_text / model.user_sequence), DataError (the
// rows, as predict reads them), IoError (an output that cannot be written, checked before any
// work).
ExportSummary export_torchscript(const ExportOptions& options);

// What export wrote, a line per file: the model with its inputs and outputs
// ("model(dense [n, 14] float32, ids [n, 4] int64) -> probability [n]"), the encoded rows with
// their count.
void write_export_summary(const ExportSummary& summary, const ExportOptions& options,
                          std::ostream& out);

}  // namespace ml::exporting
