// RUN/adaptation.json: see validated_adaptation.hpp.
#include "run/validated_adaptation.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "util/atomic_file.hpp"
#include "util/errors.hpp"

namespace ml::run {

using nlohmann::json;

namespace {

constexpr int kFormat = 1;

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json();
}

double number_from(const json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

}  // namespace

const ValidatedSetting* ValidatedAdaptation::for_shots(int shots) const {
  const ValidatedSetting* best = nullptr;
  for (const auto& s : settings)
    if (!best || std::abs(s.shots - shots) < std::abs(best->shots - shots)) best = &s;
  return best;
}

void write_validated_adaptation(const std::string& path, const ValidatedAdaptation& a) {
  json settings = json::array();
  for (const auto& s : a.settings)
    settings.push_back({{"shots", s.shots},
                        {"steps", s.steps},
                        {"inner_lr", number_or_null(s.inner_lr)},
                        {"value", number_or_null(s.value)},
                        {"half_width", number_or_null(s.half_width)},
                        {"validation_tasks", s.tasks}});
  json lrs = json::array();
  for (double lr : a.inner_lr_grid) lrs.push_back(number_or_null(lr));
  const json j = {{"format", kFormat},
                  {"chosen_on", "validation tasks"},
                  {"method", a.method},
                  {"metric", a.metric},
                  {"episodes_per_task", a.episodes},
                  {"steps_grid", a.steps_grid},
                  {"inner_lr_grid", lrs},
                  {"settings", settings}};
  write_file_atomically(path, [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

std::optional<ValidatedAdaptation> read_validated_adaptation(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw CheckpointError("'" + path +
                          "' is not JSON; delete it to adapt with the config's "
                          "meta.adapt_steps and meta.inner_lr");
  try {
    if (j.at("format").get<int>() != kFormat)
      throw CheckpointError("'" + path + "' has format " + j.at("format").dump() + ", expected " +
                            std::to_string(kFormat));
    ValidatedAdaptation a;
    a.method = j.at("method").get<std::string>();
    a.metric = j.at("metric").get<std::string>();
    a.episodes = j.at("episodes_per_task").get<int>();
    a.steps_grid = j.at("steps_grid").get<std::vector<int>>();
    for (const auto& lr : j.at("inner_lr_grid")) a.inner_lr_grid.push_back(number_from(lr));
    for (const auto& s : j.at("settings")) {
      ValidatedSetting v;
      v.shots = s.at("shots").get<int>();
      v.steps = s.at("steps").get<int>();
      v.inner_lr = number_from(s.at("inner_lr"));
      v.value = number_from(s.at("value"));
      v.half_width = number_from(s.at("half_width"));
      v.tasks = s.at("validation_tasks").get<int>();
      if (v.shots < 1 || v.steps < 0 || !(std::isnan(v.inner_lr) || v.inner_lr > 0))
        throw CheckpointError("'" + path + "': a setting has shots " + std::to_string(v.shots) +
                              ", steps " + std::to_string(v.steps) + ", inner_lr " +
                              s.at("inner_lr").dump() +
                              " (expected shots >= 1, steps >= 0, inner_lr > 0 or null)");
      a.settings.push_back(v);
    }
    return a;
  } catch (const json::exception& e) {
    throw CheckpointError("'" + path + "' is not a validated adaptation file: " + e.what());
  }
}

}  // namespace ml::run
