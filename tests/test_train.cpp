// Tests of meta-training runs: the run directory, exact resume, refusals and divergence.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/learner_state.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::testing::synthetic_shop;
using ml::testing::TempDir;
namespace fs = std::filesystem;

std::vector<torch::Tensor> weights_of(const std::string& checkpoint) {
  auto run = ml::train::load_run(checkpoint, {}, "cpu");
  std::vector<torch::Tensor> out;
  for (const auto& p : run.learner->model()->params()) out.push_back(p.detach().clone());
  return out;
}

TEST(TrainRun, WritesTheRunDirectory) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  auto summary = ml::train::run_training(config, {});
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
  auto meta = ml::train::read_checkpoint_meta((run / "checkpoints" / "latest.mlckpt").string());
  EXPECT_EQ(meta.progress["iteration"], 30);
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
  EXPECT_EQ(ml::train::read_checkpoint_meta(dir.file("interrupted/checkpoints/latest.mlckpt"))
                .progress["iteration"],
            13);
  ml::train::TrainOptions resume;
  resume.resume = true;
  ml::train::run_training(config, resume);

  auto straight = weights_of(dir.file("straight/checkpoints/latest.mlckpt"));
  auto again = weights_of(dir.file("again/checkpoints/latest.mlckpt"));
  auto resumed = weights_of(dir.file("interrupted/checkpoints/latest.mlckpt"));
  ASSERT_EQ(straight.size(), resumed.size());
  for (std::size_t i = 0; i < straight.size(); ++i) {
    EXPECT_TRUE(torch::equal(straight[i], again[i])) << "same seed differs at param " << i;
    EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << "resume differs at param " << i;
  }
  // And training moved the weights away from the seeded initialisation.
  auto run = ml::train::load_run(dir.file("straight"), {}, "cpu");
  auto init = ml::train::build_learner(config, run.data->features, torch::kCPU);
  double moved = 0;
  auto init_params = init->model()->params();
  for (std::size_t i = 0; i < straight.size(); ++i)
    moved += (straight[i] - init_params[i].detach()).abs().sum().item<double>();
  EXPECT_GT(moved, 1e-3);
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
    EXPECT_NE(std::string(e.what()).find("differs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  }
  config.run.dir = dir.file("nothing_here");
  EXPECT_THROW(ml::train::run_training(config, resume), ml::CheckpointError);
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
  config.model.type = "embedding_mlp";
  config.model.embedding_dim = 4;
  config.features.hash_buckets = 1024;
  config.meta.iterations = 6;
  auto summary = ml::train::run_training(config, {});
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  auto run = ml::train::load_run(config.run.dir, {}, "cpu");
  const auto& shape = run.learner->model()->shape();
  EXPECT_EQ(shape.type, "embedding_mlp");
  EXPECT_EQ(shape.id_cardinalities.size(), run.data->features.id_fields());
}

}  // namespace
