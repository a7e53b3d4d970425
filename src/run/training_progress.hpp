// How far a meta-training run got, as its checkpoints record it (CheckpointMeta::progress of a
// "meta" checkpoint): read by --resume, by eval (the pretrain baseline's budget) and by reports.
// Torch-free.
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace ml::run {

struct TrainingProgress {
  int iteration = 0;                       // completed meta-iterations
  std::string algorithm;                   // meta.algorithm of the run
  int best_iteration = -1;                 // where best_validation_loss was reached; -1: none yet
  double best_validation_loss = INFINITY;  // lowest validation query loss; inf: none yet
};

// {"iteration", "algorithm", "best_iteration", "best_validation_loss"}; a non-finite loss is
// written as null.
void to_json(nlohmann::json& j, const TrainingProgress& p);
// Tolerant, so every checkpoint written so far still reads: a missing or mistyped field keeps
// its default (a null loss reads as inf), and keys it does not know are ignored.
void from_json(const nlohmann::json& j, TrainingProgress& p);

}  // namespace ml::run
