// A scoring model's input, baseline and segments for Integrated Gradients: see model_input.hpp.
#include "explain/model_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "models/model.hpp"
#include "models/transformer.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::explain {

namespace {

using torch::Tensor;

// The model's parameters as float64 constants on its device: the gradient is taken with respect
// to the input only, and float64 keeps the completeness gap a measure of the quadrature.
std::vector<Tensor> double_parameters(const inference::ScoringModel& model) {
  std::vector<Tensor> p;
  for (const Tensor& w : model.learner->model()->params())
    p.push_back(w.detach().to(model.device, torch::kFloat64));
  return p;
}

// Picks each point's explained output column: out [B, C], classes [n], rows [B] -> [B].
Tensor pick(const Tensor& out, const Tensor& classes, const Tensor& rows) {
  return out.gather(1, classes.index_select(0, rows).unsqueeze(1)).squeeze(1);
}

// Where a dense feature's attribution goes: its own segment, or a group's (a one-hot column,
// a text column's buckets, an embedding table's vector).
struct DenseGroup {
  std::string name;
  bool one_hot = false;  // the segment's value is the indicator that is on
  bool vector = false;   // a block of values with no one value to show
};

DenseGroup dense_group(const std::string& name, const features::FeatureSpace& space) {
  for (const auto& field : space.categorical()) {
    if (!field.onehot) continue;
    const std::string prefix = features::source_name(field.source) + ":" + field.column + "=";
    if (starts_with(name, prefix)) return {prefix.substr(0, prefix.size() - 1), true, false};
  }
  const auto hash = name.rfind('#');
  if ((starts_with(name, "text:") || starts_with(name, "embedding:")) && hash != std::string::npos)
    return {name.substr(0, hash), false, true};
  return {name, false, false};
}

std::string shown(double v) {
  return fmt::format("{:.6g}", v);
}

ModelInput feature_input(const inference::ScoringModel& model,
                         const models::FunctionalModelImpl& net, const models::Batch& rows,
                         const Tensor& classes,
                         const std::vector<std::pair<std::string, std::string>>& user_item) {
  const features::FeatureSpace& space = model.features;
  const auto p = std::make_shared<const std::vector<Tensor>>(double_parameters(model));
  const std::int64_t n = rows.size();
  const auto tables = static_cast<std::int64_t>(net.id_tables());
  const std::int64_t dense_dim = rows.dense.size(1);
  const std::int64_t embedding_dim = tables > 0 ? (*p)[0].size(1) : 0;

  // The tower's input and its baseline.
  const Tensor dense = rows.dense.to(model.device, torch::kFloat64);
  std::vector<Tensor> parts = {dense}, base_parts = {torch::zeros_like(dense)};
  const Tensor ids = rows.ids.to(model.device);
  for (std::int64_t k = 0; k < tables; ++k) {
    const Tensor& table = (*p)[static_cast<std::size_t>(k)];
    parts.push_back(torch::embedding(table, ids.select(1, k)));
    base_parts.push_back(table.mean(0).unsqueeze(0).expand({n, embedding_dim}));
  }
  ModelInput m;
  m.input = torch::cat(parts, 1);
  m.baseline = torch::cat(base_parts, 1).contiguous();

  // Segments: dense features (grouped), then id fields, merged by name.
  std::vector<std::string> names;
  std::map<std::string, std::int64_t> index_of;
  auto segment_of = [&](const std::string& name) {
    const auto [it, added] = index_of.emplace(name, static_cast<std::int64_t>(names.size()));
    if (added) names.push_back(name);
    return it->second;
  };
  const auto& dense_names = space.dense_names();
  if (static_cast<std::int64_t>(dense_names.size()) != dense_dim)
    throw CheckpointError("'" + model.path + "' holds " + std::to_string(dense_names.size()) +
                          " dense feature names for " + std::to_string(dense_dim) + " inputs");
  std::vector<std::int64_t> element_segment;
  std::vector<DenseGroup> groups;
  for (const auto& name : dense_names) {
    groups.push_back(dense_group(name, space));
    element_segment.push_back(segment_of(groups.back().name));
  }
  const std::vector<std::string> field_names = space.id_field_names();
  for (std::int64_t k = 0; k < tables; ++k) {
    const std::int64_t s = segment_of(field_names.at(static_cast<std::size_t>(k)));
    for (std::int64_t c = 0; c < embedding_dim; ++c) element_segment.push_back(s);
  }
  m.max_segments = static_cast<std::int64_t>(names.size());
  m.segment = torch::tensor(element_segment, torch::kInt64)
                  .to(model.device)
                  .unsqueeze(0)
                  .expand({n, static_cast<std::int64_t>(element_segment.size())});

  // Each row's values, as a person reads them: dense values in the log's units (undoing the
  // standardisation; a missing value shows as the training mean it is encoded as), the
  // indicator that is on, the id's name or category.
  const Tensor dense_cpu = rows.dense.to(torch::kCPU, torch::kFloat32).contiguous();
  const Tensor ids_cpu = rows.ids.to(torch::kCPU).contiguous();
  const auto& mean = space.mean();
  const auto& scale = space.scale();
  const auto& categorical = space.categorical();
  m.segments.resize(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    std::vector<Segment>& row = m.segments[static_cast<std::size_t>(r)];
    row.resize(names.size());
    for (std::size_t s = 0; s < names.size(); ++s) row[s].name = names[s];
    const float* d = dense_cpu.data_ptr<float>() + r * dense_dim;
    for (std::int64_t c = 0; c < dense_dim; ++c) {
      const auto cu = static_cast<std::size_t>(c);
      Segment& segment = row[static_cast<std::size_t>(element_segment[cu])];
      if (groups[cu].vector) continue;
      if (groups[cu].one_hot) {
        if (d[c] > 0.5f) segment.value = dense_names[cu].substr(groups[cu].name.size() + 1);
        continue;
      }
      // Undone in double: a value at the mean (a missing one, or 0 after centring) would
      // otherwise print as float rounding noise such as -1.04709e-08.
      const double value = static_cast<double>(d[c]) * scale[cu] + mean[cu];
      const double noise = 1e-6 * std::max({1.0, std::abs(static_cast<double>(mean[cu])),
                                            static_cast<double>(scale[cu])});
      segment.value = shown(std::abs(value) <= noise ? 0.0 : value);
    }
    const std::int64_t* id = ids_cpu.data_ptr<std::int64_t>() + r * ids_cpu.size(1);
    for (std::int64_t k = 0; k < tables; ++k) {
      Segment& segment =
          row[static_cast<std::size_t>(index_of.at(field_names[static_cast<std::size_t>(k)]))];
      if (k < 2) {
        const auto& pair = user_item.size() > static_cast<std::size_t>(r)
                               ? user_item[static_cast<std::size_t>(r)]
                               : std::pair<std::string, std::string>();
        segment.value = k == 0 ? pair.first : pair.second;
        continue;
      }
      if (!segment.value.empty()) continue;  // shown by its one-hot indicators
      const auto& field = categorical.at(static_cast<std::size_t>(k - 2));
      const std::int64_t index = id[k];
      segment.value = field.hashed ? "bucket " + std::to_string(index)
                      : index == 0 ? std::string("<out of vocabulary>")
                      : index <= static_cast<std::int64_t>(field.vocabulary.size())
                          ? field.vocabulary[static_cast<std::size_t>(index - 1)]
                          : std::to_string(index);
    }
  }

  const Tensor explained = classes.to(model.device, torch::kInt64);
  const std::size_t hidden = net.shape().hidden.size();
  const std::size_t first = net.first_dense_parameter();
  const auto* layers = &net;
  m.output = [p, layers, hidden, first, explained](const Tensor& points, const Tensor& point_rows) {
    // The tower and head of models::FunctionalModelImpl from its first layer's input, through the
    // model's own stacked linear layers (a stack of one task).
    Tensor x = points.unsqueeze(0);
    for (std::size_t l = 0; l < hidden; ++l)
      x = torch::relu(layers->linear_stacked(x, *p, first + 2 * l));
    const Tensor out = layers->linear_stacked(x, *p, p->size() - 2).squeeze(0);
    return pick(out, explained, point_rows);
  };
  return m;
}

ModelInput text_input(const inference::ScoringModel& model, const models::TransformerImpl& net,
                      const models::Batch& rows, const Tensor& classes) {
  const auto p = std::make_shared<const std::vector<Tensor>>(double_parameters(model));
  const Tensor tokens = rows.tokens.to(model.device, torch::kInt64);
  const Tensor mask = rows.mask.to(model.device, torch::kBool);
  const std::int64_t n = tokens.size(0), L = tokens.size(1);
  const Tensor& table = (*p)[0];
  const std::int64_t d = table.size(1);
  ModelInput m;
  m.input = torch::embedding(table, tokens);
  m.baseline = table[features::Tokenizer::pad_id()].view({1, 1, d}).expand({n, L, d}).contiguous();
  const Tensor position = torch::arange(L, tokens.options()).unsqueeze(0).expand({n, L});
  m.segment = torch::where(mask, position, torch::full_like(position, -1))
                  .unsqueeze(-1)
                  .expand({n, L, d})
                  .reshape({n, L * d});
  m.max_segments = L;

  const Tensor tokens_cpu = rows.tokens.to(torch::kCPU, torch::kInt64).contiguous();
  const Tensor mask_cpu = rows.mask.to(torch::kCPU, torch::kBool).contiguous();
  m.segments.resize(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    auto& row = m.segments[static_cast<std::size_t>(r)];
    for (std::int64_t l = 0; l < L; ++l) {
      if (!mask_cpu[r][l].item<bool>()) break;  // real tokens come first, then padding
      const std::int64_t id = tokens_cpu[r][l].item<std::int64_t>();
      // A piece decodes to its text; SentencePiece's word-boundary piece alone decodes to a
      // space, shown as its mark.
      const std::string decoded = model.tokenizer->decode({id});
      std::string piece(trim(decoded));
      if (piece.empty()) piece = decoded.empty() ? "<piece " + std::to_string(id) + ">" : "\u2581";
      row.push_back({piece, std::to_string(l + 1)});
    }
  }

  const Tensor explained = classes.to(model.device, torch::kInt64);
  const auto* encoder = &net;
  m.output = [p, encoder, tokens, mask, explained](const Tensor& points, const Tensor& point_rows) {
    // The encoder resumed at its first layer from these token embeddings plus the positions
    // (models::StackedPrefix at layer 0), with each point's row's attention mask.
    const std::int64_t length = points.size(1);
    models::StackedPrefix prefix;
    prefix.hidden = (points + (*p)[1].narrow(0, 0, length)).unsqueeze(0);
    prefix.resume_at = 0;
    models::StackedBatch batch;
    batch.tokens = tokens.index_select(0, point_rows).unsqueeze(0);
    batch.mask = mask.index_select(0, point_rows).unsqueeze(0);
    const Tensor out = encoder->forward_stacked_from(prefix, batch, *p).squeeze(0);
    return pick(out, explained, point_rows);
  };
  return m;
}

}  // namespace

std::string supported_models() {
  return "the mlp and embedding_mlp models of purchase-log runs and the transformer of text "
         "runs";
}

namespace {

// Why model_input() cannot explain the models of a run with `config`, in words ("a protonet
// model, which ..."), or "" when it can. From what run/learner_state.cpp builds: a text run's
// transformer or TorchScript backbone; a purchase log's context model (item text or behaviour
// sequence) or functional mlp.
std::string unexplainable_reason(const config::Config& config) {
  if (config.text_run())
    return config.model.type == config::ModelType::kBackbone
               ? "a pretrained TorchScript backbone (model.type = \"backbone\")"
               : "";
  if (config.model.item_text.enabled() || config.model.user_sequence.enabled())
    return "a context model (model.item_text or model.user_sequence)";
  if (config.meta.algorithm == config::Algorithm::kProtonet)
    return "a protonet model, which scores through its support set's prototypes";
  return "";
}

}  // namespace

void require_explainable(const config::Config& config, const std::string& path) {
  const std::string what = unexplainable_reason(config);
  if (!what.empty())
    throw UsageError("explain supports " + supported_models() + "; '" + path + "' is " + what);
}

void require_explainable(const inference::ScoringModel& model) {
  require_explainable(model.config, model.path);
}

ModelInput model_input(const inference::ScoringModel& model, const models::Batch& rows,
                       const torch::Tensor& classes,
                       const std::vector<std::pair<std::string, std::string>>& user_item) {
  require_explainable(model);
  const models::Network* net = model.learner->model().get();
  if (const auto* text = dynamic_cast<const models::TransformerImpl*>(net)) {
    if (!rows.has_tokens()) throw UsageError("'" + model.path + "' reads text: give it texts");
    return text_input(model, *text, rows, classes);
  }
  return feature_input(model, dynamic_cast<const models::FunctionalModelImpl&>(*net), rows, classes,
                       user_item);
}

}  // namespace ml::explain
