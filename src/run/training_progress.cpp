// Training progress as JSON: see training_progress.hpp.
#include "run/training_progress.hpp"

namespace ml::run {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

// `out` keeps its value unless `key` holds a value of the right type (null reads as NaN).
void read_number(const nlohmann::json& j, const char* key, double& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_number())
    out = it->get<double>();
  else if (it->is_null())
    out = NAN;
}

void read_int(const nlohmann::json& j, const char* key, int& out) {
  if (auto it = j.find(key); it != j.end() && it->is_number_integer()) out = it->get<int>();
}

void read_string(const nlohmann::json& j, const char* key, std::string& out) {
  if (auto it = j.find(key); it != j.end() && it->is_string()) out = it->get<std::string>();
}

}  // namespace

void to_json(nlohmann::json& j, const TrainingProgress& p) {
  j = {{"iteration", p.iteration},
       {"algorithm", p.algorithm},
       {"selection_metric", p.selection_metric},
       {"best_iteration", p.best_iteration},
       {"best_validation", number_or_null(p.best_validation)},
       {"window_loss_sum", p.window_loss_sum},
       {"window_iterations", p.window_iterations},
       {"last_loss", number_or_null(p.last_loss)},
       {"seconds", p.seconds},
       {"task_chunks", p.task_chunks}};
  if (p.validation_pending) j["validation_pending"] = true;
}

void from_json(const nlohmann::json& j, TrainingProgress& p) {
  p = TrainingProgress{};
  if (!j.is_object()) return;
  read_int(j, "iteration", p.iteration);
  read_string(j, "algorithm", p.algorithm);
  read_int(j, "best_iteration", p.best_iteration);
  if (j.contains("best_validation_loss") && !j.contains("selection_metric")) {
    p.selection_metric = "loss";
    read_number(j, "best_validation_loss", p.best_validation);
  }
  read_string(j, "selection_metric", p.selection_metric);
  read_number(j, "best_validation", p.best_validation);
  read_number(j, "window_loss_sum", p.window_loss_sum);
  read_int(j, "window_iterations", p.window_iterations);
  read_number(j, "last_loss", p.last_loss);
  read_number(j, "seconds", p.seconds);
  read_int(j, "task_chunks", p.task_chunks);
  if (auto it = j.find("validation_pending"); it != j.end() && it->is_boolean())
    p.validation_pending = it->get<bool>();
}

}  // namespace ml::run
