// The state of an adapted checkpoint and a model loaded back for scoring, shared by adapt
// (which writes adapted checkpoints) and predict (which scores with them or with a run).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "features/feature_space.hpp"
#include "features/tokenizer.hpp"
#include "meta/meta_learner.hpp"
#include "models/batch.hpp"
#include "tasks/task_set.hpp"

namespace ml::inference {

// Archive layout of an adapted checkpoint: the learner's groups exactly as
// run::write_learner lays them out ("model" by parameter name, "inner_lr" for metasgd), so
// run::load_run reads an adapted checkpoint as it reads a run, with `adapted` as the model's
// weights; plus the encoded support set under "support" (dense, ids, target), which protonet
// scores against (its "adaptation" is the prototypes of that set). `inner_lrs`, when given,
// replaces Meta-SGD's rates (an adapted text model's, its head broadcast to its classes:
// meta/class_head.hpp).
void write_adapted_state(torch::serialize::OutputArchive& archive, meta::MetaLearner& learner,
                         const std::vector<torch::Tensor>& adapted, const models::Batch& support,
                         const std::vector<torch::Tensor>* inner_lrs = nullptr);

// A model ready to score encoded rows, without the training log: a run's meta-learned init or
// an adapted model's weights (and support set).
struct ScoringModel {
  std::string path;  // the resolved checkpoint file
  std::string kind;  // "meta" | "adapted"
  config::Config config;
  features::FeatureSpace features;
  nlohmann::json progress;
  tasks::LabelKind label_kind = tasks::LabelKind::kBinary;
  torch::Device device{torch::kCPU};
  std::unique_ptr<meta::MetaLearner> learner;
  bool has_support = false;
  models::Batch support;                 // adapted checkpoints only
  std::vector<std::string> class_names;  // multiclass: the class of output column i
  // An adapted text model's (data.text): what turns texts into the token ids it reads.
  std::optional<features::Tokenizer> tokenizer;

  // Raw outputs [n, columns] for encoded rows on the CPU: binary logits, regression values,
  // multiclass logits. No graph is kept.
  torch::Tensor outputs(const models::Batch& rows) const;
};

// `path` is an adapted checkpoint, a checkpoint file or a run directory. Throws
// CheckpointError for an unusable checkpoint and UsageError for a run that cannot score rows
// without adaptation (protonet needs a support set's prototypes; multiclass outputs mean
// classes only within an adapted episode; a text run's head names classes only once adapted).
// An adapted text model's head has one row per class of progress.classes, its tokenizer comes
// from the checkpoint, and every algorithm scores with the adapted weights (a protonet's head
// holds its prototypes: meta/class_head.hpp). `use` is what the refusals advise doing with the
// adapted model instead ("predict with", "export").
// `texts` as a text model's batch (token ids and mask, at most the run's token length; empty
// dense and id matrices), the model's tokenizer encoding them. The model must have one.
models::Batch text_batch(const ScoringModel& model, const std::vector<std::string>& texts);

// A fingerprint of encoded rows (their dense values, ids and targets): XXH3-64 as 16 hex
// digits. An adapted checkpoint records its query's ("query_checksum"), so that explaining it on
// the query rows drawn again from the run's log can tell that the log changed since, even where
// the query kept its size.
std::string rows_checksum(const models::Batch& rows);

std::unique_ptr<ScoringModel> load_scoring_model(const std::string& path, const std::string& device,
                                                 const std::string& use = "predict with");

}  // namespace ml::inference
