// Tests of meta-training runs: the run directory, exact resume, refusals and divergence.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/training_progress.hpp"
#include "test_support.hpp"
#include "train/outer_optimizer.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::testing::synthetic_shop;
using ml::testing::TempDir;
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
  config.model.type = ml::config::ModelType::kEmbeddingMlp;
  config.model.embedding_dim = 4;
  config.features.hash_buckets = 1024;
  config.meta.iterations = 6;
  auto summary = ml::train::run_training(config, {});
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  auto run = ml::run::load_run(config.run.dir, {}, "cpu");
  const auto& shape = run.learner->model()->shape();
  EXPECT_EQ(shape.type, ml::config::ModelType::kEmbeddingMlp);
  EXPECT_EQ(shape.id_cardinalities.size(), run.data->features.id_fields());
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
  std::unique_ptr<torch::optim::Optimizer> reference;
  if (algorithm == "adam")
    reference = std::make_unique<torch::optim::Adam>(std::vector<Tensor>{plain.table, plain.dense},
                                                     torch::optim::AdamOptions(0.05));
  else
    reference = std::make_unique<torch::optim::SGD>(std::vector<Tensor>{plain.table, plain.dense},
                                                    torch::optim::SGDOptions(0.05));
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
  reference->step();

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
