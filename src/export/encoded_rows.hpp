// The inputs of an exported model for given rows (`metalearn export --inputs`): what the
// TorchScript module cannot compute itself (CSV parsing, hashed ids, vocabularies, aggregates
// over the log, the SentencePiece tokenizer) done by metalearn, as predict does it, and saved as
// a TorchScript module of tensors that torch.jit.load reads without metalearn. One function per
// input kind, as export/model_script.hpp has one per model family.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "config/input_format.hpp"
#include "inference/adapted_model.hpp"

namespace ml::exporting {

struct EncodedRows {
  // The arguments of the module's forward / logits, in order (names as the module's
  // input_names).
  std::vector<std::pair<std::string, torch::Tensor>> inputs;
  // Per-row names to join the scores back to the rows: "users", "items", "tasks" (purchase
  // logs; "" where a row has none), "row_ids" (the id column's cells, when the file has one)
  // and "texts" (text runs).
  std::vector<std::pair<std::string, std::vector<std::string>>> keys;
  std::int64_t rows_read = 0, rows_skipped = 0;
};

// Rows of a purchase log's CSV, read as `predict --input` reads them (the run's column mapping
// and data.bad_rows, as `input`'s format options change them): dense [n, D] float32, the raw
// features (features::FeatureEncoder::encode unstandardised: NaN where missing), and ids
// [n, F] int64. DataError as predict.
EncodedRows encode_feature_rows(const inference::ScoringModel& model,
                                const config::InputFile& input, int threads);

// Texts of a CSV, read as `predict --input` reads them for an adapted text model, through its
// tokenizer: tokens [n, max_len] int64 (0 = padding), mask [n, max_len] bool.
EncodedRows encode_text_rows(const inference::ScoringModel& model, const config::InputFile& input);

// A TorchScript module holding `rows`: each input as a buffer, each key as a List[str]
// attribute, input_names, and a method inputs() returning the inputs as a tuple, so that
// `model(*rows.inputs())` scores them. Written to `out` (torch::jit::Module::save).
void save_encoded_rows(const EncodedRows& rows, std::ostream& out);

}  // namespace ml::exporting
