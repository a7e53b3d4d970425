// Training progress as JSON: see training_progress.hpp.
#include "run/training_progress.hpp"

namespace ml::run {

void to_json(nlohmann::json& j, const TrainingProgress& p) {
  j = {{"iteration", p.iteration},
       {"algorithm", p.algorithm},
       {"best_iteration", p.best_iteration},
       {"best_validation_loss", std::isfinite(p.best_validation_loss)
                                    ? nlohmann::json(p.best_validation_loss)
                                    : nlohmann::json()}};
}

void from_json(const nlohmann::json& j, TrainingProgress& p) {
  p = TrainingProgress{};
  if (!j.is_object()) return;
  if (auto it = j.find("iteration"); it != j.end() && it->is_number_integer())
    p.iteration = it->get<int>();
  if (auto it = j.find("algorithm"); it != j.end() && it->is_string())
    p.algorithm = it->get<std::string>();
  if (auto it = j.find("best_iteration"); it != j.end() && it->is_number_integer())
    p.best_iteration = it->get<int>();
  if (auto it = j.find("best_validation_loss"); it != j.end() && it->is_number())
    p.best_validation_loss = it->get<double>();
}

}  // namespace ml::run
