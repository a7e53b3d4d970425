// Tests of meta-training runs: the run directory, exact resume, refusals and divergence.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/training_progress.hpp"
#include "test_support.hpp"
#include "train/adam_update.hpp"
#include "train/model_selection.hpp"
#include "train/outer_optimizer.hpp"
#include "train/trainer.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"

namespace {

using ml::testing::synthetic_shop;
using ml::testing::TempDir;
using ml::testing::write_file;
namespace fs = std::filesystem;

std::vector<torch::Tensor> weights_of(const std::string& checkpoint) {
  auto run = ml::run::load_run(checkpoint, {}, "cpu");
  std::vector<torch::Tensor> out;
  for (const auto& p : run.learner->model()->params()) out.push_back(p.detach().clone());
  return out;
}

TEST(TrainRun, WritesTheRunDirectory) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  const std::size_t sinks = spdlog::default_logger()->sinks().size();
  auto summary = ml::train::run_training(config, {});
  // train.log is the run's own: its sink is gone once the run returns.
  EXPECT_EQ(spdlog::default_logger()->sinks().size(), sinks);
  EXPECT_EQ(summary.iterations, 30);
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  const fs::path run = config.run.dir;
  EXPECT_TRUE(fs::exists(run / "config.json"));
  EXPECT_TRUE(fs::exists(run / "train.log"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "latest.mlckpt"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "best.mlckpt"));
  // config.json is the resolved config: it parses back into the same config.
  std::ifstream in(run / "config.json");
  auto reparsed = ml::config::config_from_json(nlohmann::json::parse(in));
  nlohmann::json a, b;
  to_json(a, reparsed);
  to_json(b, config);
  EXPECT_EQ(a, b);
  // metrics.jsonl: a line every log_every iterations and validations every validate_every.
  std::ifstream metrics(run / "metrics.jsonl");
  int losses = 0, validations = 0;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) ++losses;
    if (j.contains("validation")) ++validations;
  }
  EXPECT_EQ(losses, 30 / 5);
  EXPECT_EQ(validations, 3);
  auto meta = ml::run::read_checkpoint_meta((run / "checkpoints" / "latest.mlckpt").string());
  EXPECT_EQ(meta.progress["iteration"], 30);
  const auto progress = meta.progress.get<ml::run::TrainingProgress>();
  EXPECT_EQ(progress.iteration, 30);
  EXPECT_EQ(progress.algorithm, ml::enum_name(config.meta.algorithm));
  EXPECT_EQ(progress.best_iteration, summary.best_iteration);
  EXPECT_EQ(meta.kind, "meta");
  EXPECT_FALSE(meta.features.is_null());
}

TEST(TrainRun, SameSeedSameWeightsAndResumeEqualsUninterrupted) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.run.dir = dir.file("straight");
  ml::train::run_training(config, {});
  config.run.dir = dir.file("again");
  ml::train::run_training(config, {});
  config.run.dir = dir.file("interrupted");
  ml::train::TrainOptions first;
  first.stop_after = 13;  // between checkpoints and validations
  ml::train::run_training(config, first);
  EXPECT_EQ(ml::run::read_checkpoint_meta(dir.file("interrupted/checkpoints/latest.mlckpt"))
                .progress["iteration"],
            13);
  // A run folder may be moved or renamed before it is resumed: run.dir is where it is now.
  std::filesystem::rename(dir.file("interrupted"), dir.file("moved"));
  config.run.dir = dir.file("moved");
  ml::train::TrainOptions resume;
  resume.resume = true;
  ml::train::run_training(config, resume);

  auto straight = weights_of(dir.file("straight/checkpoints/latest.mlckpt"));
  auto again = weights_of(dir.file("again/checkpoints/latest.mlckpt"));
  auto resumed = weights_of(dir.file("moved/checkpoints/latest.mlckpt"));
  ASSERT_EQ(straight.size(), resumed.size());
  for (std::size_t i = 0; i < straight.size(); ++i) {
    EXPECT_TRUE(torch::equal(straight[i], again[i])) << "same seed differs at param " << i;
    EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << "resume differs at param " << i;
  }
  // And training moved the weights away from the seeded initialisation.
  auto run = ml::run::load_run(dir.file("straight"), {}, "cpu");
  auto init = ml::run::build_learner(config, run.data->features, torch::kCPU);
  double moved = 0;
  auto init_params = init->model()->params();
  for (std::size_t i = 0; i < straight.size(); ++i)
    moved += (straight[i] - init_params[i].detach()).abs().sum().item<double>();
  EXPECT_GT(moved, 1e-3);
}

// metrics.jsonl's lines in file order, without the wall-clock "seconds" of training lines: the
// one field no two runs can share. Every other field (losses, validation scores, the selection)
// must be equal to the last bit.
std::vector<nlohmann::json> metrics_without_seconds(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    lines.push_back(j);
  }
  return lines;
}

std::vector<double> seconds_of(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("seconds")) out.push_back(j["seconds"].get<double>());
  }
  return out;
}

TEST(TrainRun, ResumedMetricsEqualTheUninterruptedRunsLineForLine) {
  TempDir dir;
  auto config = synthetic_shop(dir);  // 30 iterations, validation and checkpoints every 10
  config.train.log_every = 4;         // logging windows that straddle every interruption below
  config.run.dir = dir.file("straight");
  const auto straight = ml::train::run_training(config, {});
  const auto expected = metrics_without_seconds(config.run.dir);
  ASSERT_EQ(expected.size(),
            30u / 4 + 1 + 3);  // 7 full windows, the last partial one, 3 validations
  ml::train::TrainOptions resume;
  resume.resume = true;

  // --stop-after in the middle of a window (13 of 13..16), then --resume.
  config.run.dir = dir.file("stopped");
  ml::train::TrainOptions first;
  first.stop_after = 13;
  ml::train::run_training(config, first);
  const auto resumed = ml::train::run_training(config, resume);
  EXPECT_EQ(metrics_without_seconds(config.run.dir), expected);
  EXPECT_EQ(resumed.last_loss, straight.last_loss);
  EXPECT_EQ(resumed.best_iteration, straight.best_iteration);
  EXPECT_EQ(resumed.best_validation, straight.best_validation);
  // The time axis goes on where the first call stopped instead of starting again at 0.
  const auto seconds = seconds_of(config.run.dir);
  EXPECT_TRUE(std::is_sorted(seconds.begin(), seconds.end()));

  // A crash: a call ran on to iteration 17 and wrote its lines, but the newest checkpoint is
  // the one of iteration 10 (checkpoint_every), and the last line was cut off mid-write.
  config.run.dir = dir.file("crashed");
  ml::train::TrainOptions to_ten;
  to_ten.stop_after = 10;
  ml::train::run_training(config, to_ten);
  const fs::path latest = fs::path(config.run.dir) / "checkpoints" / "latest.mlckpt";
  fs::copy_file(latest, dir.file("latest_at_10.mlckpt"));
  ml::train::TrainOptions seven_more;
  seven_more.resume = true;
  seven_more.stop_after = 7;
  ml::train::run_training(config, seven_more);
  fs::copy_file(dir.file("latest_at_10.mlckpt"), latest, fs::copy_options::overwrite_existing);
  {
    std::ofstream cut(fs::path(config.run.dir) / "metrics.jsonl", std::ios::app);
    cut << R"({"iteration": 18, "lo)";
  }
  const std::string crashed = ml::testing::slurp(config.run.dir + "/metrics.jsonl");
  ASSERT_NE(crashed.find("{\"iteration\":16,"), std::string::npos);  // past the checkpoint
  ASSERT_NE(crashed.back(), '\n');
  ml::train::run_training(config, resume);
  EXPECT_EQ(metrics_without_seconds(config.run.dir), expected);

  // --resume of a finished run: nothing is trained, appended or rewritten, and it says so.
  const std::string before = ml::testing::slurp(config.run.dir + "/metrics.jsonl");
  const auto again = ml::train::run_training(config, resume);
  EXPECT_TRUE(again.already_finished);
  EXPECT_EQ(again.iterations, 30);
  EXPECT_EQ(again.last_loss, straight.last_loss);  // not 0: the run's own last logged loss
  EXPECT_EQ(again.best_iteration, straight.best_iteration);
  EXPECT_EQ(ml::testing::slurp(config.run.dir + "/metrics.jsonl"), before);
}

// A checkpoint file with its metadata rewritten by `edit` and the checksum made right again:
// the state a call left that was stopped in a way these tests cannot time (a signal during a
// validation pass).
void rewrite_checkpoint_meta(const std::string& path,
                             const std::function<void(nlohmann::json&)>& edit) {
  const std::string bytes = ml::testing::slurp(path);
  auto u64 = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  auto encode = [](std::uint64_t v) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return out;
  };
  const std::size_t meta_size = u64(12);
  auto meta = nlohmann::json::parse(bytes.substr(20, meta_size));
  edit(meta);
  const std::string text = meta.dump();
  std::string out = bytes.substr(0, 12) + encode(text.size()) + text +
                    bytes.substr(20 + meta_size, bytes.size() - 8 - 20 - meta_size);
  write_file(path, out + encode(ml::checksum64(out.data(), out.size())));
}

// Ctrl-C during a validation pass (hours on a large log) used to wait for the whole pass; now
// the pass stops between episodes and latest.mlckpt records it as pending, without its line
// (CliRunState.SigintDuringAValidationStopsItAndRecordsItPending). A resumed run does the
// pending validation first: the same metrics.jsonl and best checkpoint as the uninterrupted
// run, for a validation in the middle and for the final one (a run whose final validation is
// pending is not finished).
TEST(TrainRun, APendingValidationIsDoneFirstWhenTheRunResumes) {
  TempDir dir;
  auto config = synthetic_shop(dir);  // 30 iterations, validation and checkpoints every 10
  config.run.dir = dir.file("straight");
  const auto straight = ml::train::run_training(config, {});
  const auto expected = metrics_without_seconds(config.run.dir);
  ml::train::TrainOptions resume;
  resume.resume = true;
  for (int at : {10, 30}) {
    SCOPED_TRACE(at);
    config.run.dir = dir.file("interrupted_" + std::to_string(at));
    ml::train::TrainOptions first;
    first.stop_after = at;
    ml::train::run_training(config, first);
    // As the interrupted call leaves it: no line for the validation of `at`, the best as
    // before it, and the pending mark.
    const fs::path metrics = fs::path(config.run.dir) / "metrics.jsonl";
    std::string kept;
    int best_iteration = -1;
    double best = NAN;
    std::istringstream lines(ml::testing::slurp(metrics.string()));
    for (std::string text; std::getline(lines, text);) {
      const auto line = nlohmann::json::parse(text);
      if (line.contains("validation") && line["iteration"] == at) continue;
      if (line.contains("validation") && line["selection"]["best"] == true) {
        best_iteration = line["iteration"];
        best = line["validation"]["auc"];
      }
      kept += text + "\n";
    }
    write_file(metrics.string(), kept);
    rewrite_checkpoint_meta(config.run.dir + "/checkpoints/latest.mlckpt", [&](auto& meta) {
      meta["progress"]["validation_pending"] = true;
      meta["progress"]["best_iteration"] = best_iteration;
      meta["progress"]["best_validation"] =
          best_iteration < 0 ? nlohmann::json() : nlohmann::json(best);
    });
    const auto resumed = ml::train::run_training(config, resume);
    EXPECT_FALSE(resumed.already_finished);
    EXPECT_EQ(metrics_without_seconds(config.run.dir), expected);
    EXPECT_EQ(resumed.best_iteration, straight.best_iteration);
    EXPECT_EQ(resumed.best_validation, straight.best_validation);
    EXPECT_FALSE(ml::run::read_checkpoint_meta(config.run.dir + "/checkpoints/latest.mlckpt")
                     .progress.contains("validation_pending"));
  }
}

// Which validation the trainer kept as best.mlckpt, against what its own metrics.jsonl says.
void expect_best_is_the_metrics_best(const std::string& run_dir, const std::string& key,
                                     bool higher_is_better,
                                     const ml::train::TrainSummary& summary) {
  SCOPED_TRACE(key);
  std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
  int best_iteration = -1, validations = 0;
  double best = NAN;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("validation")) continue;
    ++validations;
    const double v = j["validation"][key].get<double>();
    const bool better = best_iteration < 0 || (higher_is_better ? v > best : v < best);
    EXPECT_EQ(j["selection"]["metric"], ml::enum_name(summary.selection_metric));
    EXPECT_EQ(j["selection"]["best"], better) << "iteration " << j["iteration"];
    if (better) {
      best = v;
      best_iteration = j["iteration"];
    }
  }
  EXPECT_GE(validations, 6);
  EXPECT_EQ(summary.best_iteration, best_iteration);
  EXPECT_EQ(summary.best_validation, best);
  const auto meta = ml::run::read_checkpoint_meta(run_dir + "/checkpoints/best.mlckpt");
  EXPECT_EQ(meta.progress["iteration"], best_iteration);
}

TEST(TrainRun, BestCheckpointIsChosenByTheSelectionMetric) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.train.validate_every = 5;
  config.run.dir = dir.file("auto");
  const auto by_auc = ml::train::run_training(config, {});  // auto: AUC for binary labels
  EXPECT_EQ(by_auc.selection_metric, ml::config::SelectionMetric::kAuc);
  expect_best_is_the_metrics_best(config.run.dir, "auc", true, by_auc);

  config.train.selection_metric = ml::config::SelectionMetric::kLoss;
  config.run.dir = dir.file("loss");
  const auto by_loss = ml::train::run_training(config, {});
  EXPECT_EQ(by_loss.selection_metric, ml::config::SelectionMetric::kLoss);
  expect_best_is_the_metrics_best(config.run.dir, "loss", false, by_loss);
}

TEST(TrainRun, SupportAllTrainsAndValidatesOnEveryOtherExample) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.task.support = ml::config::kSupportAll;
  config.meta.iterations = 4;
  config.train.validate_every = 2;
  const auto summary = ml::train::run_training(config, {});
  EXPECT_EQ(summary.iterations, 4);
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  EXPECT_TRUE(std::isfinite(summary.best_validation));
  std::ifstream in(fs::path(config.run.dir) / "config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["task"]["support"], "all");
}

TEST(TrainRun, RefusesToOverwriteAndToResumeSomethingElse) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.iterations = 4;
  ml::train::run_training(config, {});
  try {
    ml::train::run_training(config, {});
    FAIL() << "a second run into the same run.dir must be refused";
  } catch (const ml::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos) << e.what();
  }
  ml::train::TrainOptions resume;
  resume.resume = true;
  auto changed = config;
  changed.model.hidden = {16};
  try {
    ml::train::run_training(changed, resume);
    FAIL() << "resuming with another model config must be refused";
  } catch (const ml::ConfigError& e) {
    // The checkpoint and the first difference, in words rather than a JSON patch.
    const std::string m = e.what();
    EXPECT_NE(m.find("differs from the one '" + config.run.dir +
                     "/checkpoints/latest.mlckpt' was trained with, at model.hidden.0 (32 in the "
                     "checkpoint, 16 in this config)"),
              std::string::npos)
        << m;
    EXPECT_EQ(m.find("\"op\""), std::string::npos) << m;
  }
  // A checkpoint whose config or feature statistics this build cannot use names its file.
  const std::string latest = config.run.dir + "/checkpoints/latest.mlckpt";
  auto loaded = ml::run::load_run(latest, {}, "cpu");
  const auto good = ml::run::load_checkpoint(latest).meta;
  for (const std::string damage : {"config", "features"}) {
    SCOPED_TRACE(damage);
    auto meta = good;
    meta.progress["iteration"] = 2;  // not finished: --resume reads everything
    if (damage == "config")
      meta.config["model"]["hidden"] = {1000000000};
    else
      meta.features.erase("dense_names");
    ml::run::save_checkpoint(latest, meta, [&](torch::serialize::OutputArchive& archive) {
      ml::run::write_learner(archive, *loaded.learner);
    });
    try {
      ml::train::run_training(config, resume);
      FAIL() << "resumed from a damaged checkpoint";
    } catch (const ml::CheckpointError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("'" + latest + "'", 0), 0u) << e.what();
    }
  }
  config.run.dir = dir.file("nothing_here");
  EXPECT_THROW(ml::train::run_training(config, resume), ml::CheckpointError);
}

// RUN/config.json is a config: `train --config RUN/config.json --resume` continues the run from
// any folder. A run written by an earlier version, whose checkpoint holds the data paths
// relative to the folder it was trained from, still resumes with the config as loaded now
// (absolute paths) and loads back with absolute paths.
TEST(TrainRun, ResumesFromItsConfigJsonAndFromRunsWithRelativeDataPaths) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.iterations = 6;
  config.train.checkpoint_every = 1;
  const fs::path run_config = fs::path(config.run.dir) / "config.json";
  {
    ml::testing::WorkingDirectory cwd(dir.path());
    auto relative = [&](std::string& p) { p = fs::relative(p, dir.path()).string(); };
    for (auto& f : config.data.files) relative(f);
    for (auto& table : config.data.side_tables)
      for (auto& f : table.files) relative(f);
    ASSERT_EQ(config.data.files[0], "synth/events.csv");
    ml::train::TrainOptions first;
    first.stop_after = 3;
    ml::train::run_training(config, first);
    const auto stored = ml::run::read_checkpoint_meta(
        (fs::path(config.run.dir) / "checkpoints" / "latest.mlckpt").string());
    ASSERT_EQ(stored.config["data"]["files"][0], "synth/events.csv");  // as earlier versions did

    ml::config::Config now = config;
    ml::config::make_paths_absolute(now);
    ml::train::TrainOptions resume;
    resume.resume = true;
    resume.stop_after = 1;
    EXPECT_EQ(ml::train::run_training(now, resume).iterations, 4);
    auto run = ml::run::load_run(config.run.dir, {}, "cpu");
    EXPECT_TRUE(fs::path(run.config.data.files[0]).is_absolute()) << run.config.data.files[0];
  }
  fs::create_directories(dir.path() / "elsewhere");
  ml::testing::WorkingDirectory elsewhere(dir.path() / "elsewhere");
  const ml::config::Config from_run = ml::config::load_config(run_config.string());
  EXPECT_EQ(fs::weakly_canonical(from_run.data.files[0]),
            fs::weakly_canonical(dir.path() / "synth" / "events.csv"));
  ml::train::TrainOptions rest;
  rest.resume = true;
  EXPECT_EQ(ml::train::run_training(from_run, rest).iterations, 6);
}

TEST(TrainRun, DivergenceIsANumericErrorAndKeepsNoCorruptCheckpoint) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.inner_lr = 1e38;
  try {
    ml::train::run_training(config, {});
    FAIL() << "an exploding inner loop must stop the run";
  } catch (const ml::NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("meta.inner_lr"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::path(config.run.dir) / "checkpoints" / "latest.mlckpt"));
}

TEST(TrainRun, TooSmallTasksAreADataError) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.task.support = 5000;
  EXPECT_THROW(ml::train::run_training(config, {}), ml::DataError);
}

}  // namespace

namespace {

TEST(TrainRun, EmbeddingMlpTrainsAndLoadsBack) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.model.type = ml::config::ModelType::kEmbeddingMlp;
  config.model.embedding_dim = 4;
  config.features.hash_buckets = 1024;
  config.meta.iterations = 6;
  auto summary = ml::train::run_training(config, {});
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  auto run = ml::run::load_run(config.run.dir, {}, "cpu");
  const auto* mlp =
      dynamic_cast<const ml::models::FunctionalModelImpl*>(run.learner->model().get());
  ASSERT_NE(mlp, nullptr);
  const auto& shape = mlp->shape();
  EXPECT_EQ(shape.type, ml::config::ModelType::kEmbeddingMlp);
  EXPECT_EQ(shape.id_cardinalities.size(), run.data->features.id_fields());
}

}  // namespace

// --- Checkpoint selection by the task's metric ------------------------------------------------

namespace {

using ml::config::SelectionMetric;
using ml::tasks::LabelKind;

struct Validated {
  int iteration;
  double loss, auc;
};

// The iteration a run keeps as best.mlckpt, offered `validations` in order under `metric`.
int chosen(SelectionMetric metric, LabelKind kind, const std::vector<Validated>& validations) {
  const SelectionMetric resolved = ml::train::resolve_selection_metric(metric, kind);
  int best_iteration = -1;
  double best = NAN;
  for (const auto& v : validations) {
    ml::train::ValidationScores scores;
    scores.loss = v.loss;
    scores.metrics.auc = v.auc;
    const double value = ml::train::selection_value(scores, resolved);
    if (ml::train::improves(resolved, value, best)) {
      best = value;
      best_iteration = v.iteration;
    }
  }
  return best_iteration;
}

TEST(ModelSelection, AutoChoosesByAucWhereTheLossDisagrees) {
  // Issue 16's run: a balanced support and a rarely positive query make the loss prefer
  // iteration 100 (AUC 0.644) over iteration 300 (AUC 0.687).
  const std::vector<Validated> run = {
      {100, 0.50, 0.644}, {200, 0.53, 0.671}, {300, 0.55, 0.687}, {400, 0.58, 0.679}};
  EXPECT_EQ(chosen(SelectionMetric::kAuto, LabelKind::kBinary, run), 300);
  EXPECT_EQ(chosen(SelectionMetric::kAuc, LabelKind::kBinary, run), 300);
  EXPECT_EQ(chosen(SelectionMetric::kLoss, LabelKind::kBinary, run), 100);
  // A validation without an AUC (every query one class) never becomes the best; a tie keeps
  // the earlier checkpoint.
  EXPECT_EQ(chosen(SelectionMetric::kAuto, LabelKind::kBinary,
                   {{100, 0.5, NAN}, {200, 0.6, 0.61}, {300, 0.4, NAN}, {400, 0.7, 0.61}}),
            200);
  EXPECT_EQ(chosen(SelectionMetric::kAuto, LabelKind::kBinary, {{100, 0.5, NAN}}), -1);
}

TEST(ModelSelection, AutoIsTheLabelKindsOwnMetricWithItsDirection) {
  using ml::train::resolve_selection_metric;
  EXPECT_EQ(resolve_selection_metric(SelectionMetric::kAuto, LabelKind::kBinary),
            SelectionMetric::kAuc);
  EXPECT_EQ(resolve_selection_metric(SelectionMetric::kAuto, LabelKind::kMulticlass),
            SelectionMetric::kAccuracy);
  EXPECT_EQ(resolve_selection_metric(SelectionMetric::kAuto, LabelKind::kRegression),
            SelectionMetric::kRmse);
  EXPECT_EQ(resolve_selection_metric(SelectionMetric::kMae, LabelKind::kRegression),
            SelectionMetric::kMae);
  EXPECT_TRUE(ml::train::improves(SelectionMetric::kAccuracy, 0.7, 0.6));
  EXPECT_FALSE(ml::train::improves(SelectionMetric::kRmse, 0.7, 0.6));
  EXPECT_TRUE(ml::train::improves(SelectionMetric::kRmse, 0.5, 0.6));
  EXPECT_TRUE(ml::train::improves(SelectionMetric::kMae, 0.9, NAN));  // the first value

  // Scores are means over the episodes that have them: a one-class query has a loss, no AUC.
  ml::train::ValidationMean mean;
  ml::metrics::QueryMetrics a, b;
  a.auc = 0.8;
  b.auc = NAN;
  mean.add(0.4, a);
  mean.add(0.6, b);
  const auto scores = mean.mean();
  EXPECT_DOUBLE_EQ(scores.loss, 0.5);
  EXPECT_DOUBLE_EQ(scores.metrics.auc, 0.8);
  EXPECT_TRUE(std::isnan(scores.metrics.rmse));
  EXPECT_TRUE(std::isnan(ml::train::ValidationMean{}.mean().loss));
}

}  // namespace

// --- The outer optimiser: lazy (row-sparse) Adam and SGD for embedding tables --------------

namespace {

using ml::meta::RowSparseGradient;
using torch::Tensor;

// A table [8, 3] and a dense vector, both leaves; `table_grad` is the full gradient of the
// table, of which only `rows` are nonzero.
struct Problem {
  Tensor table = torch::randn({8, 3}, torch::kFloat64).requires_grad_(true);
  Tensor dense = torch::randn({4}, torch::kFloat64).requires_grad_(true);
};

Tensor rows_of(std::vector<std::int64_t> rows) {
  return torch::tensor(rows, torch::kInt64);
}

// The optimiser's saved state as tensors by name.
Tensor saved_state(const ml::train::OuterOptimizer& optimizer, const std::string& name) {
  torch::serialize::OutputArchive out;
  optimizer.save(out);
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  torch::serialize::InputArchive sparse;
  in.read("row_sparse_optimizer", sparse);
  Tensor value;
  sparse.read(name, value);
  return value;
}

void expect_first_step_equals_dense(const std::string& algorithm) {
  SCOPED_TRACE(algorithm);
  torch::manual_seed(3);
  Problem lazy;
  Problem plain{lazy.table.detach().clone().requires_grad_(true),
                lazy.dense.detach().clone().requires_grad_(true)};
  ml::config::MetaConfig meta;
  meta.outer_optimizer = ml::testing::choice<ml::config::OuterOptimizer>(algorithm);
  meta.outer_lr = 0.05;
  ml::train::OuterOptimizer optimizer(meta, {lazy.table, lazy.dense}, {true, false});
  // The same optimiser with the table dense (AdamUpdate.* ties its dense step to torch's).
  auto reference = std::make_unique<ml::train::OuterOptimizer>(
      meta, std::vector<Tensor>{plain.table, plain.dense}, std::vector<bool>{false, false});
  const Tensor touched = rows_of({1, 4, 6});
  const Tensor values = torch::randn({3, 3}, torch::kFloat64);
  const Tensor dense_grad = torch::randn({4}, torch::kFloat64);
  const Tensor before = lazy.table.detach().clone();

  optimizer.zero_grad();
  lazy.dense.mutable_grad() = dense_grad.clone();
  optimizer.step({RowSparseGradient{0, touched, values}});
  reference->zero_grad();
  plain.dense.mutable_grad() = dense_grad.clone();
  plain.table.mutable_grad() = torch::zeros_like(plain.table).index_copy_(0, touched, values);
  reference->step({});

  EXPECT_TRUE(torch::equal(lazy.table, plain.table));
  EXPECT_TRUE(torch::equal(lazy.dense, plain.dense));
  Tensor untouched = rows_of({0, 2, 3, 5, 7});
  EXPECT_TRUE(
      torch::equal(lazy.table.index_select(0, untouched), before.index_select(0, untouched)));
  EXPECT_FALSE(torch::equal(lazy.table.index_select(0, touched), before.index_select(0, touched)));

  if (algorithm != "adam") return;
  // A second step touching other rows: rows 1 and 6 and their moments stay exactly as they are
  // (dense Adam would keep moving them on their momentum).
  const Tensor after_first = lazy.table.detach().clone();
  const Tensor m = saved_state(optimizer, "exp_avg_0"), v = saved_state(optimizer, "exp_avg_sq_0");
  optimizer.zero_grad();
  optimizer.step({RowSparseGradient{0, rows_of({2, 4}), torch::randn({2, 3}, torch::kFloat64)}});
  const Tensor resting = rows_of({1, 6});
  EXPECT_TRUE(
      torch::equal(lazy.table.index_select(0, resting), after_first.index_select(0, resting)));
  EXPECT_TRUE(torch::equal(saved_state(optimizer, "exp_avg_0").index_select(0, resting),
                           m.index_select(0, resting)));
  EXPECT_TRUE(torch::equal(saved_state(optimizer, "exp_avg_sq_0").index_select(0, resting),
                           v.index_select(0, resting)));
  EXPECT_FALSE(torch::equal(lazy.table.index_select(0, rows_of({2})),
                            after_first.index_select(0, rows_of({2}))));
  EXPECT_EQ(saved_state(optimizer, "step").item<std::int64_t>(), 2);
}

TEST(OuterOptimizer, RowSparseFirstStepEqualsDenseAndLeavesUntouchedRowsAlone) {
  expect_first_step_equals_dense("adam");
  expect_first_step_equals_dense("sgd");
}

// torch::optim::Adam's per-parameter state for `p`.
const torch::optim::AdamParamState& adam_state(const torch::optim::Adam& adam, const Tensor& p) {
  const auto& state = adam.state().at(c10::guts::to_string(p.unsafeGetTensorImpl()));
  return static_cast<const torch::optim::AdamParamState&>(*state);
}

// adam_update against torch::optim::Adam (the formula it promises, and the checkpoints' state):
// 30 steps of float and double parameters whose length leaves a tail after the 8- and 4-wide
// vector loops, and a transposed (non-contiguous) one that takes torch's own operations.
TEST(AdamUpdate, FollowsTorchAdamStepByStep) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (bool contiguous : {true, false}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + (contiguous ? "" : " transposed"));
      torch::manual_seed(11);
      const Tensor start =
          contiguous ? torch::randn({1237}, dtype) : torch::randn({9, 7}, dtype).t();
      Tensor theirs = start.clone().requires_grad_(true);  // clone() keeps the strides
      Tensor ours = start.clone();
      Tensor m = torch::zeros_like(ours), v = torch::zeros_like(ours);
      torch::optim::Adam adam({theirs}, torch::optim::AdamOptions(0.01));
      double largest = 0;
      for (std::int64_t step = 1; step <= 30; ++step) {
        const Tensor grad = torch::randn(start.sizes(), dtype) * (step % 7 == 0 ? 1e-6 : 1.0);
        theirs.mutable_grad() = grad.clone();
        adam.step();
        ml::train::adam_update(ours, m, v, grad, {0.01, 0.9, 0.999, 1e-8, step});
        largest = std::max(largest,
                           ((ours - theirs.detach()).abs() / theirs.detach().abs().clamp_min(1e-3))
                               .max()
                               .item<double>());
        const auto& state = adam_state(adam, theirs);
        ASSERT_TRUE(
            torch::allclose(m, state.exp_avg(), dtype == torch::kFloat32 ? 1e-6 : 1e-14, 0));
        ASSERT_TRUE(
            torch::allclose(v, state.exp_avg_sq(), dtype == torch::kFloat32 ? 1e-6 : 1e-14, 0));
      }
      // Each step may round differently only where torch's CPU kernels do not fuse as the
      // vector loop does (a CPU without FMA): a few ulps, never a different update.
      EXPECT_LT(largest, dtype == torch::kFloat32 ? 1e-5 : 1e-13);
      EXPECT_FALSE(torch::equal(ours, start));
      if (!contiguous) {
        EXPECT_TRUE(torch::equal(ours, theirs.detach()));  // torch's own operations
      }
    }
  }
}

// The lazy step updates the named rows in place exactly as the gathered rows would be updated
// (and as dense Adam updates a whole table: OuterOptimizer.RowSparseFirstStep...), touches no
// other row, and refuses a row outside the table.
TEST(AdamUpdate, RowsInPlaceEqualTheGatheredRowsAndLeaveTheRestAlone) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    SCOPED_TRACE(c10::toString(dtype));
    torch::manual_seed(5);
    const Tensor table = torch::randn({50, 19}, dtype);
    const Tensor first = torch::randn({50, 19}, dtype), second = torch::rand({50, 19}, dtype);
    const Tensor rows = rows_of({2, 3, 17, 40, 49});
    const Tensor grad = torch::randn({5, 19}, dtype);
    const ml::train::AdamCoefficients c{0.05, 0.9, 0.999, 1e-8, 3};

    Tensor w = table.clone(), m = first.clone(), v = second.clone();
    ml::train::adam_update_rows(w, m, v, rows, grad, c);
    Tensor gw = table.index_select(0, rows), gm = first.index_select(0, rows),
           gv = second.index_select(0, rows);
    ml::train::adam_update(gw, gm, gv, grad, c);
    EXPECT_TRUE(torch::equal(w.index_select(0, rows), gw));
    EXPECT_TRUE(torch::equal(m.index_select(0, rows), gm));
    EXPECT_TRUE(torch::equal(v.index_select(0, rows), gv));
    const Tensor others = rows_of({0, 1, 4, 16, 18, 39, 41, 48});
    EXPECT_TRUE(torch::equal(w.index_select(0, others), table.index_select(0, others)));
    EXPECT_TRUE(torch::equal(m.index_select(0, others), first.index_select(0, others)));
    EXPECT_TRUE(torch::equal(v.index_select(0, others), second.index_select(0, others)));

    // A non-contiguous gradient takes the gathered path: the same numbers.
    Tensor w2 = table.clone(), m2 = first.clone(), v2 = second.clone();
    ml::train::adam_update_rows(w2, m2, v2, rows, grad.t().contiguous().t(), c);
    EXPECT_TRUE(torch::equal(w2, w));
    EXPECT_TRUE(torch::equal(m2, m));
    EXPECT_TRUE(torch::equal(v2, v));

    Tensor untouched = table.clone();
    EXPECT_THROW(ml::train::adam_update_rows(untouched, m, v, rows_of({1, 50}),
                                             torch::randn({2, 19}, dtype), c),
                 std::out_of_range);
    EXPECT_TRUE(torch::equal(untouched, table));
  }
}

TEST(OuterOptimizer, ClippingUsesOneNormOverDenseAndRowSparseGradients) {
  Tensor dense = torch::zeros({2}, torch::kFloat64).requires_grad_(true);
  dense.mutable_grad() = torch::tensor({3.0, 4.0}, torch::kFloat64);  // norm 5
  std::vector<RowSparseGradient> sparse{
      {0, rows_of({2}), torch::tensor({{12.0}}, torch::kFloat64)}};  // norm 12
  const Tensor learners_values = sparse[0].values;
  const double norm = ml::train::clip_gradients({dense}, sparse, 1.3);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double scale = 1.3 / (13.0 + 1e-6);
  EXPECT_TRUE(
      torch::allclose(dense.grad(), torch::tensor({3.0, 4.0}, torch::kFloat64) * scale, 1e-12, 0));
  EXPECT_NEAR(sparse[0].values.item<double>(), 12.0 * scale, 1e-12);
  EXPECT_EQ(learners_values.item<double>(), 12.0);  // scaled a copy, not the learner's tensor
  // Under the limit nothing changes.
  const Tensor clipped_grad = dense.grad().clone();
  EXPECT_NEAR(ml::train::clip_gradients({dense}, sparse, 100.0), 1.3, 1e-6);
  EXPECT_TRUE(torch::equal(dense.grad(), clipped_grad));
}

TEST(TrainRun, EmbeddingMlpResumeEqualsUninterrupted) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.model.type = ml::config::ModelType::kEmbeddingMlp;
  config.model.embedding_dim = 4;
  config.features.hash_buckets = 1024;
  config.meta.iterations = 20;
  config.meta.grad_clip = 0.5;  // the clipped steps must resume exactly too
  config.run.dir = dir.file("straight");
  ml::train::run_training(config, {});
  config.run.dir = dir.file("interrupted");
  ml::train::TrainOptions first;
  first.stop_after = 9;
  ml::train::run_training(config, first);
  ml::train::TrainOptions resume;
  resume.resume = true;
  ml::train::run_training(config, resume);

  auto straight = weights_of(dir.file("straight/checkpoints/latest.mlckpt"));
  auto resumed = weights_of(dir.file("interrupted/checkpoints/latest.mlckpt"));
  ASSERT_EQ(straight.size(), resumed.size());
  for (std::size_t i = 0; i < straight.size(); ++i)
    EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << "resume differs at param " << i;
  // The tables were trained: some rows moved, and most (never touched) did not.
  auto run = ml::run::load_run(dir.file("straight"), {}, "cpu");
  auto init = ml::run::build_learner(config, run.data->features, torch::kCPU);
  const Tensor moved_rows = (straight[0] != init->model()->params()[0].detach()).any(1).sum();
  EXPECT_GT(moved_rows.item<std::int64_t>(), 0);
  EXPECT_LT(moved_rows.item<std::int64_t>(), straight[0].size(0));
}

}  // namespace

// meta.first_order_fallback: a maml run whose second-order step would not fit under
// run.memory_limit_mib trains first order and says so; the measurement itself changes nothing
// (the fallen-back run equals a fomaml run, and a run that fits equals one that never measured),
// and a resumed run keeps the order it started with.
TEST(TrainRun, MamlFallsBackToFirstOrderWhenASecondOrderStepWouldNotFit) {
  TempDir dir;
  const auto config = synthetic_shop(dir);
  ml::config::Json j;
  to_json(j, config);
  write_file(dir.file("shop.json"), j.dump());
  const std::string train = "train --config " + ml::testing::shell_quote(dir.file("shop.json")) +
                            " --set meta.iterations=12 --set run.dir=" + dir.file("");
  const auto algorithm_of = [&](const std::string& run) {
    return ml::run::read_checkpoint_meta(dir.file(run + "/checkpoints/latest.mlckpt"))
        .progress.value("algorithm", "");
  };
  const auto weights = [&](const std::string& run) {
    return weights_of(dir.file(run + "/checkpoints/latest.mlckpt"));
  };
  const auto equal = [](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!torch::equal(a[i], b[i])) return false;
    return true;
  };
  // 1 MiB: less than the process holds before the step.
  const auto tight = ml::testing::run_cli(train + "tight --set run.memory_limit_mib=1");
  ASSERT_EQ(tight.code, 0) << tight.err;
  EXPECT_TRUE(ml::testing::contains(tight.err, "meta-training first order instead")) << tight.err;
  EXPECT_TRUE(ml::testing::contains(tight.err, "against 1 MiB (run.memory_limit_mib)"))
      << tight.err;
  EXPECT_EQ(algorithm_of("tight"), "fomaml");
  const auto fomaml = ml::testing::run_cli(train + "fomaml --set meta.algorithm=fomaml");
  ASSERT_EQ(fomaml.code, 0) << fomaml.err;
  EXPECT_TRUE(equal(weights("tight"), weights("fomaml")));

  const auto roomy = ml::testing::run_cli(train + "roomy --set run.memory_limit_mib=1000000");
  ASSERT_EQ(roomy.code, 0) << roomy.err;
  EXPECT_TRUE(ml::testing::contains(roomy.err, "memory: second order fits")) << roomy.err;
  EXPECT_EQ(algorithm_of("roomy"), "maml");
  const auto kept = ml::testing::run_cli(
      train + "kept --set run.memory_limit_mib=1 --set meta.first_order_fallback=false");
  ASSERT_EQ(kept.code, 0) << kept.err;
  EXPECT_FALSE(ml::testing::contains(kept.err, "first order instead")) << kept.err;
  EXPECT_EQ(algorithm_of("kept"), "maml");
  EXPECT_TRUE(equal(weights("roomy"), weights("kept")));
  EXPECT_FALSE(equal(weights("roomy"), weights("tight")));  // second order is not first order

  // Stopped after 5 iterations, resumed where memory would allow second order: still first order.
  ASSERT_EQ(
      ml::testing::run_cli(train + "resumed --set run.memory_limit_mib=1 --stop-after 5").code, 0);
  const auto resumed =
      ml::testing::run_cli(train + "resumed --set run.memory_limit_mib=1000000 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(algorithm_of("resumed"), "fomaml");
  EXPECT_TRUE(equal(weights("tight"), weights("resumed")));
}
