// Choosing a run's own adaptation setting on its validation tasks, at the end of `metalearn
// train`: the cold-start protocol's first stage restricted to the run's method, over a grid of
// inner-loop steps x inner learning rates at the config's K, written to RUN/adaptation.json
// (run/validated_adaptation.hpp) for `adapt` to use by default.
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"
#include "run/validated_adaptation.hpp"

namespace ml::eval {

// The grids searched: steps {0, 1, 2, 3, 5, 10, 20} with meta.inner_steps and meta.adapt_steps
// added; inner lr {1/3, 1, 3} x meta.inner_lr (metasgd learns its rates and protonet has none).
inline constexpr int kChoiceEpisodes = 5;  // episodes per validation task
// A choice made on fewer validation tasks than this is logged with a warning: its 95% CI over
// so few tasks is wider than the differences between neighbouring settings of the grid (the
// demo's log measured about +-0.05 AUC with 6 tasks), so the setting is close to a guess.
inline constexpr int kFewValidationTasks = 10;

// Chooses and writes RUN/adaptation.json for the trained run in config.run.dir; returns what was
// written, or std::nullopt (writing nothing) when nothing can be chosen: the run's algorithm
// does not adapt (scratch), task.support is "all", the run has no
// validation task or none can give an episode at task.support, or every setting diverged. Then
// a warning (info for scratch and "all", which are by design) says why, and so does `why_not`
// when given, for the command's summary. Errors as eval::run_cold_start.
std::optional<run::ValidatedAdaptation> choose_adaptation(const config::Config& config,
                                                          const std::string& device, int threads,
                                                          std::string* why_not = nullptr);

}  // namespace ml::eval
