// The settings a text run's own method adapts with on an M-way task over classes it may never
// have seen (meta::adapt_to_classes: a prototype head of M rows, then the run's inner loop), and
// their accuracy on one task: the one candidate set that eval's many-way protocol
// (eval/text_eval.hpp) and `metalearn adapt` given no setting (inference/text_adaptation.hpp)
// both choose from on the validation classes, so that the two never disagree about what was
// tried.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "meta/meta_learner.hpp"

namespace ml::eval {

// Step counts chosen among by default: eval's --steps default on a text run, and adapt's grid
// (to which it adds meta.adapt_steps).
inline const std::vector<int> kClassAdaptSteps{0, 1, 3, 5, 10};

struct ClassAdaptSetting {
  int steps = 0;
  double lr = 0;  // unused at 0 steps
  bool operator==(const ClassAdaptSetting& o) const {
    return steps == o.steps && (steps == 0 || lr == o.lr);
  }
};

// "0 steps" or "3 steps, lr 0.1".
std::string setting_name(const ClassAdaptSetting& setting);

// 0 steps once (the prototype head: nearest class mean on the run's encoder) when `steps` holds
// 0, then every positive count of `steps` (ascending, each once) at `inner_lr` and at a tenth of
// it; metasgd, whose rates are learned, at `inner_lr` only. The tenth because the run's rate was
// meta-learned for its N-row head: a many-way prototype head has far larger logits, and the
// run's own rate can ruin it (banking77, 25 new intents, accuracy 0.53 -> 0.31 in 3 steps).
// Ordered from the cheapest, so that a choice that takes the first of equal scores prefers
// fewer steps.
std::vector<ClassAdaptSetting> class_adapt_settings(std::vector<int> steps, double inner_lr,
                                                    config::Algorithm algorithm);

// Accuracy on `task`'s query (labels 0..classes-1, every class in the support) after adapting
// with each of `settings`; NaN for a setting that diverged (never chosen: NaN compares false).
std::vector<double> class_adapt_accuracies(const meta::MetaLearner& learner,
                                           const meta::TaskBatch& task, std::int64_t classes,
                                           const std::vector<ClassAdaptSetting>& settings);

// The index of the best of `scores` (the first of equal ones; NaN never wins), or -1 when every
// one is NaN.
int best_setting(const std::vector<double>& scores);

}  // namespace ml::eval
