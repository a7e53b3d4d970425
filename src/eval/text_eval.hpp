// `metalearn eval` for a text run (data.text): few-shot classification on held-out classes.
// Every method is adapted on the same N-way K-shot episodes of the new classes and scored on the
// same query texts; each method's setting is first chosen on episodes of the validation classes,
// then the new classes are scored once with it (the protocol of eval/cold_start.hpp). Methods:
// the run's own algorithm (its inner loop, adaptation steps chosen from a grid; protonet adapts
// by prototypes), and two baselines on the same meta-trained encoder that fit only a classifier
// on the support: nearest class mean (SimpleShot, Wang et al. 2019) and a linear probe ("Baseline"
// of Chen et al. 2019, its L2 penalty chosen on validation). Accuracy per episode; the mean over
// episodes with its 95% Student t interval, and each baseline's paired difference to the run's
// method. Queries are the new classes' own texts of the run's files, never seen in training.
// Torch-free on purpose, like cold_start.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/confidence.hpp"

namespace ml::eval {

struct TextEvalOptions {
  std::string checkpoint;                  // run directory or checkpoint file of a text run
  std::vector<int> shots{1, 5};            // K support texts per class, each >= 1
  std::vector<int> steps{0, 1, 3, 5, 10};  // adaptation step counts to choose among, >= 0
  int episodes = 100;                      // per K, on the validation and on the new classes
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget
};

struct TextMethodScore {
  std::string method;   // the run's algorithm, "nearest_class_mean" or "linear_probe"
  std::string setting;  // "3 steps", "l2 0.1", "" (chosen on the validation classes)
  int shots = 0;
  metrics::Interval accuracy;  // over the new classes' episodes
  // The run's method minus this one, paired by episode (empty for the run's own method).
  bool compared = false;
  metrics::Interval run_minus_this;
};

struct TextEvalResult {
  std::string checkpoint;
  std::string algorithm;
  int ways = 0, queries_per_class = 0, episodes = 0;
  std::int64_t new_classes = 0, validation_classes = 0;
  // Why settings could not be chosen on the validation classes ("" when they were): the
  // defaults (meta.adapt_steps, an L2 of 1) were used instead.
  std::string not_chosen;
  std::vector<TextMethodScore> scores;  // by K, the run's method first
};

// ConfigError/UsageError for options out of range or a checkpoint that is not a text run's;
// DataError when the new classes cannot give one N-way K-shot episode (naming why).
TextEvalResult evaluate_text_run(const TextEvalOptions& options);

nlohmann::json to_json(const TextEvalResult& result);
std::string format_table(const TextEvalResult& result);

}  // namespace ml::eval
