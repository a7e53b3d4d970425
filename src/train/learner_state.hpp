// Building a meta-learner for a config and moving its state in and out of checkpoints, shared
// by train (save, resume) and adapt/eval/predict (load).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "config/config.hpp"
#include "features/feature_space.hpp"
#include "meta/meta_learner.hpp"

namespace ml::train {

// A freshly initialised learner (torch's RNG seeded from config.seed first, so the same config
// gives the same initial weights), on `device`.
std::unique_ptr<meta::MetaLearner> build_learner(const config::Config& config,
                                                 const features::FeatureSpace& features,
                                                 const torch::Device& device);

// Model parameters by name under "model", Meta-SGD learning rates under "inner_lr".
void write_learner(torch::serialize::OutputArchive& archive, meta::MetaLearner& learner);
// Throws CheckpointError when a tensor is missing or has another shape.
void read_learner(torch::serialize::InputArchive& archive, meta::MetaLearner& learner,
                  const std::string& source);

}  // namespace ml::train
