// A scoring model's input as Integrated Gradients sees it (explain/integrated_gradients.hpp):
// the continuous representation its first layer reads, the baseline in that same space, the
// explained output as a function of it, and the named segments the per-element attributions
// are summed into.
//
// - mlp / embedding_mlp (models/model.hpp): what the first tower layer reads,
//   [dense features | one embedding per id field]. Segments: each dense feature by name, except
//   that a one-hot categorical column's indicator columns ("item:brand=acme", ...) are one
//   segment "item:brand", a text column's hashed word buckets ("text:title#0..") one segment
//   "text:title", and an embedding table's vector ("embedding:NAME#0..") one segment
//   "embedding:NAME"; each id field (user, item, each categorical column) one segment summed
//   over its embedding dimensions, merged with the column's one-hot segment when it has both.
//   Baseline: 0 for every dense input, which is the training mean of each standardised
//   feature (features.standardize, the default: encoded as (x - mean) / sd) and what a missing
//   value is encoded as; for the unstandardised blocks (one-hot indicators, hashed text
//   buckets, embedding-table vectors) 0 is "absent". Each id field's embedding at the mean of
//   its table's rows: defined for every field (a hashed field has no out-of-vocabulary row, and
//   its row 0 is some real ids' bucket), the centre of the embeddings the model can be given,
//   and near what an id never seen in training gets (its row keeps its small random start).
// - transformer over text (models/transformer.hpp): the token embeddings [L, d] (the position
//   embeddings are added inside the function, as the model does). Segments: one per real token
//   of the row, named by its piece's text, its value the 1-based position. Baseline: every
//   token replaced by the padding token's embedding with the same attention mask, as Captum's
//   BERT tutorial builds its reference; padding positions equal their baseline, so they get 0.
//
// Other models (context models with model.item_text or model.user_sequence, TorchScript
// backbones, and a purchase-log protonet, which scores through its support set's prototypes)
// are refused with a UsageError naming the supported ones.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "explain/integrated_gradients.hpp"
#include "inference/adapted_model.hpp"
#include "models/batch.hpp"

namespace ml::explain {

// One attributable part of a row's input.
struct Segment {
  std::string name;   // a feature, id field or token
  std::string value;  // its value in the row, as a person reads it ("" where there is none)
};

struct ModelInput {
  torch::Tensor input;     // [n, ...] float64: what IG integrates over
  torch::Tensor baseline;  // the same shape
  // [n, E] int64, E = the values per row: each input value's segment in its row's list, -1 for
  // none (a text row's padding).
  torch::Tensor segment;
  std::vector<std::vector<Segment>> segments;  // per row
  std::int64_t max_segments = 0;               // the longest row's list
  // The explained output of path points (RowFunction): the binary logit, the regression value,
  // or the logit of the row's class (`classes`), with the model's parameters in float64.
  RowFunction output;
};

// The names of the models explain can explain, for messages and docs.
std::string supported_models();

// UsageError, naming the supported models, for a model model_input() cannot explain: checked
// before any input is read. The second form from a checkpoint's config alone (`path` names it
// in the message), before the model is loaded.
void require_explainable(const inference::ScoringModel& model);
void require_explainable(const config::Config& config, const std::string& path);

// `rows` encoded by the model (a feature batch, or a text batch with tokens and mask);
// `classes` [n] int64, the output column explained per row (0 for a single output).
// `user_item` gives each row's user and item names (feature batches; empty strings where a
// row has none). Throws UsageError for a model it cannot explain (supported_models()).
ModelInput model_input(const inference::ScoringModel& model, const models::Batch& rows,
                       const torch::Tensor& classes,
                       const std::vector<std::pair<std::string, std::string>>& user_item = {});

}  // namespace ml::explain
