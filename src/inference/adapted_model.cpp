// Adapted-checkpoint state and scoring models: see adapted_model.hpp.
#include "inference/adapted_model.hpp"

#include <cstdio>

#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "runtime/device.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"

namespace ml::inference {

namespace {
constexpr const char* kSupportGroup = "support";

// An adapted text model: its classes, tokenizer and M-way learner.
void load_text_model(const run::Checkpoint& checkpoint, ScoringModel& m, const std::string& use) {
  m.kind = checkpoint.meta.kind;
  m.progress = checkpoint.meta.progress;
  m.label_kind = tasks::LabelKind::kMulticlass;
  if (m.kind != run::kCheckpointKindAdapted)
    throw UsageError("'" + m.path +
                     "' is a text run's meta-trained model: its head names no classes until it "
                     "is adapted; run 'metalearn adapt --checkpoint RUN --all-new' (or "
                     "--support-csv FILE) first and " +
                     use + " the model it writes");
  const auto classes = m.progress.find("classes");
  if (classes == m.progress.end() || !classes->is_array() || classes->size() < 2)
    throw CheckpointError("'" + m.path + "' is corrupt: an adapted text model without its classes");
  for (const auto& c : *classes) {
    if (!c.is_string())
      throw CheckpointError("'" + m.path + "' is corrupt: a class name that is not a string");
    m.class_names.push_back(c.get<std::string>());
  }
  m.tokenizer = features::Tokenizer::from_bytes(run::read_tokenizer(checkpoint));
  std::shared_ptr<const models::TorchScriptBackbone> backbone;
  if (m.config.model.type == config::ModelType::kBackbone)
    backbone = models::TorchScriptBackbone::load(
        m.config, torch::kCPU, run::backbone_checksum(checkpoint), m.tokenizer->vocab_size());
  m.learner = run::build_text_learner(m.config, *m.tokenizer, m.device,
                                      static_cast<std::int64_t>(m.class_names.size()), backbone);
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) {
        run::read_learner(archive, *m.learner, m.path);
      },
      m.device);
}
}  // namespace

void write_adapted_state(torch::serialize::OutputArchive& archive, meta::MetaLearner& learner,
                         const std::vector<torch::Tensor>& adapted, const models::Batch& support,
                         const std::vector<torch::Tensor>* inner_lrs) {
  const auto& names = learner.model()->names();
  if (adapted.size() != names.size())
    throw std::logic_error("write_adapted_state: " + std::to_string(adapted.size()) +
                           " tensors for " + std::to_string(names.size()) + " parameters");
  torch::serialize::OutputArchive model;
  for (std::size_t i = 0; i < adapted.size(); ++i) model.write(names[i], adapted[i].detach().cpu());
  archive.write("model", model);
  // Meta-SGD's learned rates stay with the model: read_learner expects them, and adapting the
  // adapted model again would need them.
  torch::serialize::OutputArchive lrs;
  const auto& inner = inner_lrs ? *inner_lrs : learner.inner_learning_rates();
  for (std::size_t i = 0; i < inner.size(); ++i) lrs.write(names[i], inner[i].detach().cpu());
  archive.write("inner_lr", lrs);
  torch::serialize::OutputArchive set;
  set.write("dense", support.dense.detach().cpu());
  set.write("ids", support.ids.detach().cpu());
  set.write("target", support.target.detach().cpu());
  archive.write(kSupportGroup, set);
}

torch::Tensor ScoringModel::outputs(const models::Batch& rows) const {
  torch::NoGradGuard no_grad;
  const models::Batch on_device = device.is_cuda() ? rows.to(device) : rows;
  torch::Tensor out;
  if (learner->algorithm() == config::Algorithm::kProtonet && !tokenizer)
    out = learner->adapted_outputs(support, on_device, 0);
  else
    out = learner->model()->forward(on_device, learner->model()->params());
  return out.detach().to(torch::kCPU).contiguous();
}

models::Batch text_batch(const ScoringModel& model, const std::vector<std::string>& texts) {
  const models::TokenBatch tokens = models::token_batch(
      model.tokenizer->encode_batch(texts, pipeline::token_length(model.config)));
  models::Batch batch;
  const std::int64_t n = tokens.ids.size(0);
  batch.dense = torch::empty({n, 0});
  batch.ids = torch::empty({n, 0}, torch::kInt64);
  batch.target = torch::zeros({n}, torch::kInt64);
  batch.tokens = tokens.ids;
  batch.mask = tokens.mask;
  return batch;
}

std::string rows_checksum(const models::Batch& rows) {
  Checksum64 sum;
  for (const torch::Tensor* t : {&rows.dense, &rows.ids, &rows.target}) {
    if (!t->defined()) continue;
    const torch::Tensor bytes = t->to(torch::kCPU).contiguous();
    sum.update(bytes.data_ptr(), static_cast<std::size_t>(bytes.nbytes()));
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(sum.value()));
  return hex;
}

std::unique_ptr<ScoringModel> load_scoring_model(const std::string& path, const std::string& device,
                                                 const std::string& use) {
  auto m = std::make_unique<ScoringModel>();
  m->device = runtime::torch_device(device);
  m->path = run::resolve_checkpoint_path(path);
  run::Checkpoint checkpoint = run::load_checkpoint(m->path);
  m->config = run::saved_config(checkpoint.meta.config, m->path);
  run::apply_recorded_algorithm(m->config, checkpoint.meta);
  if (m->config.text_run()) {
    load_text_model(checkpoint, *m, use);
    return m;
  }
  m->features = run::saved_features(checkpoint.meta.features, m->path);
  m->kind = checkpoint.meta.kind;
  m->progress = checkpoint.meta.progress;
  m->label_kind = tasks::label_kind(m->config);
  m->learner = run::build_learner(m->config, m->features, m->device);
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) {
        run::read_learner(archive, *m->learner, m->path);
        torch::serialize::InputArchive set;
        if (!archive.try_read(kSupportGroup, set)) return;
        if (!set.try_read("dense", m->support.dense) || !set.try_read("ids", m->support.ids) ||
            !set.try_read("target", m->support.target))
          throw CheckpointError("'" + m->path + "' has an incomplete support set");
        m->has_support = true;
      },
      m->device);
  if (m->progress.contains("classes") && m->progress["classes"].is_array())
    m->class_names = m->progress["classes"].get<std::vector<std::string>>();

  if (m->learner->algorithm() == config::Algorithm::kProtonet && !m->has_support)
    throw UsageError("'" + m->path +
                     "' is a protonet run: it scores against a task's prototypes, which only an "
                     "adapted model has; run 'metalearn adapt' first and " +
                     use + " its output");
  if (m->label_kind == tasks::LabelKind::kMulticlass && m->class_names.empty())
    throw UsageError("'" + m->path +
                     "' is a multiclass run: its outputs name classes only within an adapted "
                     "task; run 'metalearn adapt' first and " +
                     use + " its output");
  return m;
}

}  // namespace ml::inference
