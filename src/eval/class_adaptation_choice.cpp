// The adaptation settings of a text run on M classes: see class_adaptation_choice.hpp.
#include "eval/class_adaptation_choice.hpp"

#include <algorithm>
#include <cmath>

#include "meta/class_head.hpp"
#include "util/strings.hpp"

namespace ml::eval {

std::string setting_name(const ClassAdaptSetting& s) {
  return s.steps == 0 ? "0 steps" : count_of(s.steps, "step") + ", lr " + short_number(s.lr);
}

std::vector<ClassAdaptSetting> class_adapt_settings(std::vector<int> steps, double inner_lr,
                                                    config::Algorithm algorithm) {
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  std::vector<ClassAdaptSetting> out;
  if (!steps.empty() && steps.front() == 0) out.push_back({0, inner_lr});
  std::vector<double> lrs{inner_lr};
  if (algorithm != config::Algorithm::kMetaSgd) lrs.push_back(inner_lr / 10);
  for (double lr : lrs)
    for (int s : steps)
      if (s > 0) out.push_back({s, lr});
  return out;
}

std::vector<double> class_adapt_accuracies(const meta::MetaLearner& learner,
                                           const meta::TaskBatch& task, std::int64_t classes,
                                           const std::vector<ClassAdaptSetting>& settings) {
  std::vector<double> out;
  for (const ClassAdaptSetting& s : settings) {
    const auto params = meta::adapt_to_classes(learner, task.support, classes, s.steps, s.lr);
    const torch::Tensor logits = meta::class_outputs(learner, params, task.query);
    // argmax would still pick a class from NaN logits.
    out.push_back(
        !torch::isfinite(logits).all().item<bool>()
            ? NAN
            : logits.argmax(1).eq(task.query.target).to(torch::kFloat64).mean().item<double>());
  }
  return out;
}

int best_setting(const std::vector<double>& scores) {
  int best = -1;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (!std::isnan(scores[i]) && (best < 0 || scores[i] > scores[static_cast<std::size_t>(best)]))
      best = static_cast<int>(i);
  return best;
}

}  // namespace ml::eval
