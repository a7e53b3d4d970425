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
#include <set>
#include <sstream>

#include "config/choices.hpp"
#include "config/config.hpp"
#include "config/json_object.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/json_diff.hpp"
#include "util/json_text.hpp"

namespace ml::run {

using nlohmann::json;

namespace {

constexpr int kFormat = 1;
// The primary metrics eval chooses by (the first metric of each label kind).
const std::vector<std::string> kPrimaryMetrics{"auc", "accuracy", "rmse"};

// How every refusal of a file ends: the way out.
std::string remedy() {
  return "; delete it to adapt with the config's meta.adapt_steps and meta.inner_lr";
}

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json();
}

// The reader's checks throw ConfigError("KEY = VALUE: expected ...") (config::require and the
// config's strict JsonObject); read_validated_adaptation turns each into one CheckpointError
// naming the file.

// `key` of `raw`, which must be there (null counts: it means "none"). Every key a setting
// depends on is required, so a misspelt one is "missing", never a silent default; keys no one
// asks for are left alone, so that a newer file with more keys still reads.
const json& required(const config::JsonObject& object, const json& raw, const char* key) {
  if (!raw.contains(key)) throw ConfigError(object.path_of(key) + ": missing");
  return raw.at(key);
}

int whole_number(const json& v, const std::string& path, int lowest, int highest) {
  const double d = v.is_number() ? v.get<double>() : NAN;
  const bool ok = (v.is_number_integer() || (v.is_number_float() && d == std::floor(d))) &&
                  d >= lowest && d <= highest;
  config::require(
      ok, path, v,
      "expected a whole number from " + std::to_string(lowest) + " to " + std::to_string(highest));
  return static_cast<int>(d);
}

double number_or_null(const json& v, const std::string& path) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  config::require(v.is_number(), path, v, "expected a number or null");
  return v.get<double>();
}

// An inner lr: a usable rate, or null for methods without one (metasgd, protonet).
double inner_lr_or_null(const json& v, const std::string& path) {
  const double lr = number_or_null(v, path);
  config::require(std::isnan(lr) || usable_inner_lr(lr), path, v,
                  "expected null or a learning rate from " + usable_inner_lr_range());
  return lr;
}

std::vector<json> array_of(const json& v, const std::string& path, const char* what) {
  config::require(v.is_array(), path, v, std::string("expected a list of ") + what);
  return v.get<std::vector<json>>();
}

ValidatedSetting read_setting(const json& raw, const std::string& path) {
  config::JsonObject object(raw, path);
  ValidatedSetting s;
  s.shots = whole_number(required(object, raw, "shots"), object.path_of("shots"), 1, kMaxShots);
  s.steps =
      whole_number(required(object, raw, "steps"), object.path_of("steps"), 0, kMaxAdaptSteps);
  s.inner_lr = inner_lr_or_null(required(object, raw, "inner_lr"), object.path_of("inner_lr"));
  s.value = number_or_null(required(object, raw, "value"), object.path_of("value"));
  const json& half_width = required(object, raw, "half_width");
  s.half_width = number_or_null(half_width, object.path_of("half_width"));
  config::require(!(s.half_width < 0), object.path_of("half_width"), half_width,
                  "expected a number >= 0 or null");
  s.tasks = whole_number(required(object, raw, "validation_tasks"),
                         object.path_of("validation_tasks"), 1, std::numeric_limits<int>::max());
  return s;
}

ValidatedAdaptation read_adaptation(const json& raw) {
  config::JsonObject object(raw, "");
  ValidatedAdaptation a;
  const json& format = required(object, raw, "format");
  config::require(format == json(kFormat), "format", format,
                  "expected " + std::to_string(kFormat) + " (written by another metalearn?)");
  const json& method = required(object, raw, "method");
  config::require(method.is_string(), "method", method, "expected an algorithm name");
  a.method = method.get<std::string>();
  config::require_one_of("method", a.method, enum_names<config::Algorithm>());
  const json& metric = required(object, raw, "metric");
  config::require(metric.is_string(), "metric", metric, "expected a metric name");
  a.metric = metric.get<std::string>();
  config::require_one_of("metric", a.metric, kPrimaryMetrics);
  a.episodes = whole_number(required(object, raw, "episodes_per_task"), "episodes_per_task", 1,
                            std::numeric_limits<int>::max());
  const auto steps = array_of(required(object, raw, "steps_grid"), "steps_grid", "step counts");
  for (std::size_t i = 0; i < steps.size(); ++i)
    a.steps_grid.push_back(
        whole_number(steps[i], "steps_grid[" + std::to_string(i) + "]", 0, kMaxAdaptSteps));
  const auto lrs =
      array_of(required(object, raw, "inner_lr_grid"), "inner_lr_grid", "learning rates");
  for (std::size_t i = 0; i < lrs.size(); ++i)
    a.inner_lr_grid.push_back(inner_lr_or_null(lrs[i], "inner_lr_grid[" + std::to_string(i) + "]"));
  const json& settings = required(object, raw, "settings");
  const auto list = array_of(settings, "settings", "objects");
  config::require(!list.empty(), "settings", settings, "expected at least one setting");
  std::set<int> shots;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = "settings[" + std::to_string(i) + "]";
    a.settings.push_back(read_setting(list[i], path));
    config::require(shots.insert(a.settings.back().shots).second, path + ".shots",
                    list[i].at("shots"), "a K given twice (one setting per K)");
  }
  if (raw.contains("config") && !raw.at("config").is_null()) {
    config::require(raw.at("config").is_object(), "config", raw.at("config"),
                    "expected the run's config (an object)");
    a.config = raw.at("config");
  }
  return a;
}

}  // namespace

bool usable_inner_lr(double lr) {
  return lr > 0 && config::fits_float(lr);
}

std::string usable_inner_lr_range() {
  std::ostringstream text;
  text.precision(2);
  text << std::numeric_limits<float>::min() << " to " << std::numeric_limits<float>::max();
  return text.str();
}

json validated_config_of(const json& run_config) {
  json j = run_config;
  if (j.is_object()) j.erase("run");
  return j;
}

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
  json j = {{"format", kFormat},
            {"chosen_on", "validation tasks"},
            {"method", a.method},
            {"metric", a.metric},
            {"episodes_per_task", a.episodes},
            {"steps_grid", a.steps_grid},
            {"inner_lr_grid", lrs},
            {"settings", settings}};
  if (!a.config.is_null()) j["config"] = a.config;
  write_file_atomically(path, [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

std::optional<ValidatedAdaptation> read_validated_adaptation(const std::string& path) {
  std::error_code ec;
  const auto type = std::filesystem::status(path, ec).type();
  if (type == std::filesystem::file_type::not_found) return std::nullopt;
  // Every problem is one line naming the file, the key or position, and the way out.
  auto fail = [&path](const std::string& why) {
    return CheckpointError("'" + path + "': " + why + remedy());
  };
  if (type == std::filesystem::file_type::directory) throw fail("a folder, not a file");
  std::ifstream in(path);
  if (!in) throw CheckpointError("cannot read '" + path + "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const JsonText parsed = parse_json_text(text.str());
  if (!parsed.ok()) throw fail(parsed.where + ": " + parsed.problem);
  try {
    return read_adaptation(parsed.value);
  } catch (const ConfigError& e) {
    throw fail(e.what());
  }
}

void check_validated_adaptation(const std::string& path, const ValidatedAdaptation& a,
                                const json& run_config) {
  const json::json_pointer at("/meta/algorithm");
  // A config without its algorithm is refused by the run's loader, naming the checkpoint.
  if (!run_config.contains(at) || !run_config.at(at).is_string()) return;
  const std::string algorithm = run_config.at(at).get<std::string>();
  if (a.method != algorithm)
    throw CheckpointError("'" + path + "' was chosen for method " + a.method + ", the run is " +
                          algorithm + " (copied from another run?)" + remedy());
  if (a.config.is_null()) return;
  const std::string difference = first_json_difference(
      a.config, validated_config_of(run_config), "", "in the file", "in the run's checkpoint");
  if (!difference.empty())
    throw CheckpointError("'" + path + "' was chosen for another run: the configs differ at " +
                          difference + remedy());
}

}  // namespace ml::run
