// Divergence of a training run: see divergence.hpp.
#include "run/divergence.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/atomic_file.hpp"
#include "util/errors.hpp"

namespace ml::run {

namespace fs = std::filesystem;

double exploding_loss_limit(tasks::LabelKind kind,
                            const std::vector<const tasks::Task*>& training_tasks) {
  double constant_loss = std::log(2.0);
  if (kind == tasks::LabelKind::kMulticlass) {
    float top_class = 1;
    for (const tasks::Task* task : training_tasks)
      for (const tasks::Example& e : task->examples) top_class = std::max(top_class, e.label);
    constant_loss = std::log(static_cast<double>(top_class) + 1);
  } else if (kind == tasks::LabelKind::kRegression) {
    double sum = 0;
    std::size_t n = 0;
    for (const tasks::Task* task : training_tasks)
      for (const tasks::Example& e : task->examples) {
        sum += static_cast<double>(e.label) * e.label;
        ++n;
      }
    constant_loss = n > 0 ? sum / static_cast<double>(n) : 0;
  }
  return kExplodingLossFactor * std::max(1.0, constant_loss);
}

std::string divergence_reason(double loss, double loss_limit, double gradient_norm) {
  if (!std::isfinite(loss)) return fmt::format("the query loss is {}", loss);
  if (loss > loss_limit)
    return fmt::format(
        "the query loss {:.4g} exploded (above {:.4g}, {:g} times the loss of a constant "
        "prediction)",
        loss, loss_limit, kExplodingLossFactor);
  if (!std::isnan(gradient_norm) && !std::isfinite(gradient_norm))
    return fmt::format("the meta-gradient norm is {}", gradient_norm);
  return "";
}

void write_divergence(const RunLayout& layout, const Divergence& divergence) {
  const nlohmann::json j = {{"iteration", divergence.iteration},
                            {"checkpoint", divergence.checkpoint},
                            {"reason", divergence.reason}};
  write_file_atomically(layout.divergence().string(),
                        [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

std::optional<Divergence> read_divergence(const RunLayout& layout) {
  std::error_code ec;
  if (!fs::exists(layout.divergence(), ec)) return std::nullopt;
  std::ifstream in(layout.divergence());
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  Divergence d;
  d.reason = "unreadable mark";
  if (!j.is_object()) return d;
  if (j.contains("iteration") && j["iteration"].is_number_integer())
    d.iteration = j["iteration"].get<int>();
  if (j.contains("checkpoint") && j["checkpoint"].is_number_integer())
    d.checkpoint = j["checkpoint"].get<int>();
  if (j.contains("reason") && j["reason"].is_string()) d.reason = j["reason"].get<std::string>();
  return d;
}

void refuse_diverged(const std::string& checkpoint_or_run_dir) {
  const RunLayout layout(run_dir_of(checkpoint_or_run_dir));
  const std::optional<Divergence> d = read_divergence(layout);
  if (!d) return;
  throw NumericError("the run in '" + layout.dir.string() + "' diverged in training (" + d->reason +
                     "; see '" + layout.divergence().string() +
                     "'): its checkpoints are an unfinished run, not a model to use; train it "
                     "again into a new run.dir with the learning rates lowered");
}

}  // namespace ml::run
