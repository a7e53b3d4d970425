// RUN/adaptation.json: see validated_adaptation.hpp.
#include "run/validated_adaptation.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "config/config.hpp"
#include "config/json_object.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/json_text.hpp"

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
  std::error_code ec;
  const auto type = std::filesystem::status(path, ec).type();
  if (type == std::filesystem::file_type::not_found) return std::nullopt;
  // Every problem is one line naming the file, the key or position, and the way out.
  auto fail = [&path](const std::string& why) {
    return CheckpointError("'" + path + "': " + why +
                           "; delete it to adapt with the config's meta.adapt_steps and "
                           "meta.inner_lr");
  };
  if (type == std::filesystem::file_type::directory) throw fail("a folder, not a file");
  std::ifstream in(path);
  if (!in) throw CheckpointError("cannot read '" + path + "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  JsonText parsed = parse_json_text(text.str());
  if (!parsed.ok()) throw fail(parsed.where + ": " + parsed.problem);
  // The config's strict reader names the key and what was expected, and range-checks integers
  // (nlohmann's get<int> would wrap 4294967297 to 1); unknown keys are left alone (no finish()),
  // so that a newer file with more keys still reads.
  auto require_keys = [&](const config::JsonObject& o, std::initializer_list<const char*> keys) {
    for (const char* key : keys)
      if (!o.has(key)) throw fail(o.path_of(key) + ": missing");
  };
  // A number, or null for "none" (NaN); absent reads as none too.
  auto number = [](config::JsonObject& o, const char* key) {
    double v = std::numeric_limits<double>::quiet_NaN();
    o.read(key, v);
    return v;
  };
  try {
    config::JsonObject top(parsed.value, "");
    require_keys(top, {"format", "method", "metric", "episodes_per_task", "steps_grid",
                       "inner_lr_grid", "settings"});
    int format = 0;
    top.read("format", format);
    if (format != kFormat)
      throw fail("format " + std::to_string(format) + ", expected " + std::to_string(kFormat));
    ValidatedAdaptation a;
    top.read("method", a.method);
    top.read("metric", a.metric);
    top.read("episodes_per_task", a.episodes);
    top.read("steps_grid", a.steps_grid);
    json lrs;
    top.read("inner_lr_grid", lrs);
    if (!lrs.is_array())
      throw fail("inner_lr_grid = " + lrs.dump().substr(0, 60) + ": expected a list");
    for (std::size_t i = 0; i < lrs.size(); ++i) {
      if (!lrs[i].is_number() && !lrs[i].is_null())
        throw fail("inner_lr_grid[" + std::to_string(i) + "] = " + lrs[i].dump() +
                   ": expected a number or null");
      a.inner_lr_grid.push_back(number_from(lrs[i]));
    }
    for (auto& s : top.objects("settings")) {
      require_keys(s, {"shots", "steps", "validation_tasks"});
      ValidatedSetting v;
      s.read("shots", v.shots);
      s.read("steps", v.steps);
      v.inner_lr = number(s, "inner_lr");
      v.value = number(s, "value");
      v.half_width = number(s, "half_width");
      s.read("validation_tasks", v.tasks);
      // The rate becomes meta.inner_lr, a 32-bit float in the model.
      if (v.shots < 1 || v.steps < 0 ||
          !(std::isnan(v.inner_lr) || (v.inner_lr > 0 && config::fits_float(v.inner_lr))))
        throw fail(s.path() + " has shots " + std::to_string(v.shots) + ", steps " +
                   std::to_string(v.steps) + ", inner_lr " + json(v.inner_lr).dump() +
                   " (expected shots >= 1, steps >= 0, inner_lr > 0 fitting a 32-bit float, "
                   "or null)");
      a.settings.push_back(v);
    }
    return a;
  } catch (const ConfigError& e) {
    throw fail(e.what());
  }
}

}  // namespace ml::run
