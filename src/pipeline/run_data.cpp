// Data preparation shared by the commands: see run_data.hpp.
#include "pipeline/run_data.hpp"

#include <spdlog/spdlog.h>

#include "data/log_cache.hpp"
#include "util/interrupt.hpp"

namespace ml::pipeline {

std::unique_ptr<RunData> prepare_run_data(const config::Config& config,
                                          const features::FeatureSpace* saved_features) {
  auto data = std::make_unique<RunData>();
  data->log = data::load_purchase_log_cached(config, data->report);
  data::warn_about_load(data->report);
  // Between the stages, each of which can take seconds on a large log (util/interrupt.hpp).
  throw_if_interrupted("preparing the data");
  data->tasks = tasks::build_tasks(data->log, config);
  tasks::split_tasks(data->tasks, config);
  throw_if_interrupted("preparing the data");
  const auto train_rows = tasks::training_rows(data->log, data->tasks);
  if (saved_features)
    data->features = *saved_features;
  else
    data->features = features::FeatureSpace::fit(data->log, data->tasks, train_rows, config);
  // The log the statistics were fitted on: its examples must not count themselves.
  data->encoder = data->features.bind(
      data->log, features::aggregate_history(data->log, data->tasks, train_rows, config));
  spdlog::debug("prepared {} rows, {} tasks, {} dense features", data->log.size(),
                data->tasks.tasks.size(), data->features.dense_dim());
  return data;
}

}  // namespace ml::pipeline
