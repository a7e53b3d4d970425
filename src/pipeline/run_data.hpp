// Everything a command derives from a config before any model is involved: the loaded log,
// its tasks with labels and roles, and the fitted feature space with an encoder bound to the
// log. One function builds it, so inspect, train, adapt and eval all see the same data.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "tasks/task_set.hpp"

namespace ml::pipeline {

struct RunData {
  data::LoadReport report;
  data::PurchaseLog log;
  tasks::TaskSet tasks;
  features::FeatureSpace features;
  features::FeatureEncoder encoder;  // bound to `log` and `features`: RunData does not move
};

// Loads and splits; fits the feature space on training rows, or takes `saved_features` (the
// statistics stored in a checkpoint, run::saved_features) when given, so later commands encode
// as training did.
std::unique_ptr<RunData> prepare_run_data(const config::Config& config,
                                          const features::FeatureSpace* saved_features = nullptr);

}  // namespace ml::pipeline
