// Reading training histories for the report: see training_log.hpp.
#include "report/training_log.hpp"

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "run/run_layout.hpp"

namespace ml::report {

namespace fs = std::filesystem;

namespace {

using Series = std::map<int, double>;  // by iteration: a resumed run's later line wins

std::vector<TrainingPoint> points(const Series& s) {
  std::vector<TrainingPoint> out;
  for (const auto& [iteration, value] : s) out.push_back({iteration, value});
  return out;
}

double number_or_nan(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

}  // namespace

TrainingLog read_training_log(const std::string& path, const std::string& method) {
  TrainingLog log;
  log.method = method;
  log.path = path;
  std::ifstream in(path);
  Series loss, validation_loss, validation_auc;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    auto iteration = j.is_object() ? j.find("iteration") : j.end();
    if (!j.is_object() || iteration == j.end() || !iteration->is_number_integer()) {
      ++log.skipped_lines;
      continue;
    }
    const int it = iteration->get<int>();
    if (auto v = j.find("validation"); v != j.end() && v->is_object()) {
      validation_loss[it] = number_or_nan(*v, "loss");
      validation_auc[it] = number_or_nan(*v, "auc");
    } else if (j.contains("loss")) {
      loss[it] = number_or_nan(j, "loss");
    } else {
      ++log.skipped_lines;
    }
  }
  log.loss = points(loss);
  log.validation_loss = points(validation_loss);
  bool any_auc = false;
  for (const auto& [it, v] : validation_auc) any_auc = any_auc || std::isfinite(v);
  if (any_auc) log.validation_auc = points(validation_auc);
  return log;
}

std::vector<TrainingLog> read_training_logs(const eval::ColdStartResult& result) {
  std::vector<TrainingLog> logs;
  auto add = [&](const fs::path& dir, const std::string& method) {
    TrainingLog log = read_training_log(run::RunLayout(dir).metrics().string(), method);
    if (!log.empty()) logs.push_back(std::move(log));
  };
  for (const auto& run : result.runs) add(run.run_dir, run.method);
  if (!result.pretrain_checkpoint.empty())
    add(run::run_dir_of(result.pretrain_checkpoint), "pretrain");
  return logs;
}

}  // namespace ml::report
