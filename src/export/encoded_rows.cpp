// Encoded inputs of an exported model: see encoded_rows.hpp.
#include "export/encoded_rows.hpp"

#include <torch/script.h>

#include "data/purchase_log.hpp"
#include "export/model_script.hpp"
#include "inference/prediction.hpp"
#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "util/errors.hpp"

namespace ml::exporting {

EncodedRows encode_feature_rows(const inference::ScoringModel& model,
                                const config::InputFile& input, int threads) {
  config::Config config = model.config;
  config.run.threads = threads;
  data::LoadReport report;
  const data::PurchaseLog log = data::load_input_file(config, input, report);
  data::warn_about_load(report);
  const features::FeatureEncoder encoder = model.features.bind(log);
  const auto n = static_cast<std::int64_t>(log.size());
  const auto dense_dim = static_cast<std::int64_t>(model.features.dense_dim());
  const auto id_fields = static_cast<std::int64_t>(model.features.id_fields());
  torch::Tensor dense = torch::empty({n, dense_dim}, torch::kFloat32);
  torch::Tensor ids = torch::empty({n, id_fields}, torch::kInt64);
  std::vector<std::string> users, items, task_names;
  auto name = [](const data::Dictionary& d, std::int32_t id) {
    return id == data::kNoId ? std::string() : d.name(id);
  };
  for (std::int64_t r = 0; r < n; ++r) {
    const auto i = static_cast<std::size_t>(r);
    // As predict's rows (inference::score_rows): the label is never read.
    const tasks::Example example{r, log.user[i], log.item[i], 0.0f, log.timestamp[i]};
    encoder.encode(example, dense.data_ptr<float>() + r * dense_dim,
                   ids.data_ptr<std::int64_t>() + r * id_fields, /*standardized=*/false);
    users.push_back(name(log.users, log.user[i]));
    items.push_back(name(log.items, log.item[i]));
    task_names.push_back(name(log.tasks, log.task[i]));
  }
  EncodedRows rows;
  rows.inputs = {{"dense", dense}, {"ids", ids}};
  rows.keys = {{"users", users}, {"items", items}, {"tasks", task_names}};
  rows.rows_read = report.rows_read;
  rows.rows_skipped = report.rows_rejected;
  return rows;
}

EncodedRows encode_text_rows(const inference::ScoringModel& model, const config::InputFile& input) {
  if (!model.tokenizer) throw UsageError("'" + model.path + "' is not an adapted text model");
  data::TextLoadReport report;
  const data::TextDataset texts = inference::read_text_rows(model.config, input, report);
  const models::TokenBatch tokens = models::token_batch(
      model.tokenizer->encode_batch(texts.texts, pipeline::token_length(model.config)));
  EncodedRows rows;
  rows.inputs = {{"tokens", tokens.ids}, {"mask", tokens.mask}};
  if (texts.ids.size() == texts.size()) rows.keys.emplace_back("row_ids", texts.ids);
  rows.keys.emplace_back("texts", texts.texts);
  rows.rows_read = report.rows_read;
  rows.rows_skipped = report.rows_rejected;
  return rows;
}

void save_encoded_rows(const EncodedRows& rows, std::ostream& out) {
  torch::jit::Module module("metalearn.EncodedRows");
  std::vector<std::string> names;
  std::string tuple, values;
  for (const auto& [name, tensor] : rows.inputs) {
    module.register_buffer(name, tensor.contiguous());
    names.push_back(name);
    tuple += std::string(tuple.empty() ? "" : ", ") + "Tensor";
    values += std::string(values.empty() ? "" : ", ") + "self." + name;
  }
  module.register_attribute("input_names", c10::ListType::ofStrings(), string_list(names));
  for (const auto& [name, cells] : rows.keys)
    module.register_attribute(name, c10::ListType::ofStrings(), string_list(cells));
  module.define("def inputs(self) -> Tuple[" + tuple + "]:\n    return (" + values + ")\n");
  module.save(out);
}

}  // namespace ml::exporting
