// The transformer through every meta-learning algorithm (meta/meta_learner.hpp) on token
// batches, as models::Network: the task-stacked meta-gradient against the per-task reference
// loop in float64 for each algorithm, adaptation on a new task, meta.inner_layers, and a few
// meta-steps that learn a toy text task.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>

#include "meta/meta_learner.hpp"
#include "meta_gradients.hpp"
#include "models/transformer.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Algorithm;
using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::models::Batch;
using ml::models::TransformerImpl;
using ml::models::TransformerShape;
using ml::tasks::LabelKind;
using torch::Tensor;

TransformerShape tiny(std::int64_t outputs, std::int64_t layers = 1) {
  TransformerShape s;
  s.vocab_size = 16;
  s.max_len = 5;
  s.model_dim = 8;
  s.heads = 2;
  s.layers = layers;
  s.ff_dim = 12;
  s.outputs = outputs;
  return s;
}

// `n` texts of 3 classes whose first token is 2 + class (the rest noise), varying lengths.
Batch toy_texts(std::int64_t n, std::int64_t L) {
  Batch b;
  b.target = torch::arange(n, torch::kInt64).remainder(3);
  b.tokens = torch::randint(5, 16, {n, L}, torch::kInt64);
  b.tokens.select(1, 0).copy_(b.target + 2);
  const Tensor lengths = torch::randint(2, L + 1, {n, 1}, torch::kInt64);
  b.mask = torch::arange(L, torch::kInt64).unsqueeze(0) < lengths;
  b.tokens.masked_fill_(b.mask.logical_not(), 0);
  b.dense = torch::empty({n, 0});
  b.ids = torch::empty({n, 0}, torch::kInt64);
  return b;
}

std::vector<TaskBatch> toy_tasks(int count) {
  std::vector<TaskBatch> tasks;
  // Unequal sizes: the stack pads, and padding must change nothing.
  for (int t = 0; t < count; ++t) tasks.push_back({toy_texts(6 + t % 2 * 3, 5), toy_texts(9, 5)});
  return tasks;
}

ml::config::MetaConfig meta_config(Algorithm algorithm) {
  ml::config::MetaConfig m;
  m.algorithm = algorithm;
  m.inner_steps = 2;
  m.inner_lr = 0.3;
  return m;
}

std::shared_ptr<TransformerImpl> tiny_model(std::uint64_t seed, torch::Dtype dtype,
                                            std::int64_t layers = 1) {
  torch::manual_seed(seed);
  auto model = std::make_shared<TransformerImpl>(tiny(3, layers));
  model->to(dtype);
  return model;
}

// The stacked meta-gradient of `tasks` against the per-task reference loop's: the same loss
// and, entry by entry, the same gradient (float64). Returns the stacked gradients.
std::vector<Tensor> expect_stacked_equals_per_task(MetaLearner& learner,
                                                   const TransformerImpl& model,
                                                   const std::vector<TaskBatch>& tasks,
                                                   const std::string& name) {
  const double stacked_loss = learner.accumulate_meta_gradient(tasks);
  const std::vector<Tensor> stacked = ml::testing::take_gradients(learner);
  const double reference_loss = learner.accumulate_meta_gradient_per_task(tasks);
  const std::vector<Tensor> reference = ml::testing::take_gradients(learner);
  EXPECT_TRUE(std::isfinite(stacked_loss)) << name;
  EXPECT_NEAR(stacked_loss, reference_loss, 1e-9) << name;
  for (std::size_t i = 0; i < stacked.size(); ++i)
    EXPECT_TRUE(torch::allclose(stacked[i], reference[i], 1e-7, 1e-10))
        << name << ": " << (i < model.names().size() ? model.names()[i] : "inner lr");
  return stacked;
}

TEST(TransformerMetaLearning, EveryAlgorithmsStackedMetaGradientMatchesThePerTaskLoop) {
  for (Algorithm algorithm :
       {Algorithm::kMaml, Algorithm::kFomaml, Algorithm::kReptile, Algorithm::kAnil,
        Algorithm::kMetaSgd, Algorithm::kProtonet, Algorithm::kPretrain}) {
    const std::string name = ml::enum_name(algorithm);
    auto model = tiny_model(11, torch::kFloat64);
    MetaLearner learner(meta_config(algorithm), LabelKind::kMulticlass, model);
    torch::manual_seed(5);
    const std::vector<Tensor> stacked =
        expect_stacked_equals_per_task(learner, *model, toy_tasks(4), name);
    double norm = 0;
    for (const Tensor& g : stacked) norm += g.pow(2).sum().item<double>();
    EXPECT_GT(norm, 1e-8) << name << ": no meta-gradient at all";
  }
}

TEST(TransformerMetaLearning, WithFrozenLowerLayersTheStackedMetaGradientMatchesThePerTaskLoop) {
  // meta.inner_layers = [-1] of two: the stacked inner loop computes the embeddings and the
  // first layer on the support set once (models::Network::stacked_prefix), the per-task
  // reference at every step.
  for (Algorithm algorithm : {Algorithm::kMaml, Algorithm::kFomaml, Algorithm::kMetaSgd}) {
    const std::string name = ml::enum_name(algorithm);
    auto config = meta_config(algorithm);
    config.inner_steps = 3;
    config.inner_layers = {-1};
    auto model = tiny_model(12, torch::kFloat64, /*layers=*/2);
    MetaLearner learner(config, LabelKind::kMulticlass, model);
    torch::manual_seed(6);
    const std::vector<Tensor> stacked =
        expect_stacked_equals_per_task(learner, *model, toy_tasks(3), name);
    // Second order reaches the frozen first layer through the inner steps.
    EXPECT_GT(stacked[2].abs().sum().item<double>(), 0) << name << ": " << model->names()[2];
  }
}

TEST(TransformerMetaLearning, TasksTooLargeToStackRunOneStackAfterAnotherToTheSameGradient) {
  // With 4,096 positions one task's widest activation (18 texts x 4,096 x 24 values) exceeds
  // the stack budget: a stack holds one task, and the meta-gradient is still the per-task
  // loop's. The tiny model of the other tests stacks all four.
  ml::models::TransformerShape shape = tiny(3);
  shape.max_len = 4096;
  for (Algorithm algorithm : {Algorithm::kMaml, Algorithm::kFomaml, Algorithm::kProtonet}) {
    const std::string name = ml::enum_name(algorithm);
    torch::manual_seed(13);
    auto model = std::make_shared<TransformerImpl>(shape);
    model->to(torch::kFloat64);
    MetaLearner learner(meta_config(algorithm), LabelKind::kMulticlass, model);
    torch::manual_seed(7);
    const std::vector<TaskBatch> tasks = toy_tasks(4);
    EXPECT_EQ(learner.tasks_per_stack(tasks), 1u) << name;
    expect_stacked_equals_per_task(learner, *model, tasks, name);
  }
  MetaLearner small(meta_config(Algorithm::kMaml), LabelKind::kMulticlass,
                    tiny_model(1, torch::kFloat32));
  EXPECT_EQ(small.tasks_per_stack(toy_tasks(4)), 4u);
}

TEST(TransformerMetaLearning, AdaptsToANewTaskAndRecordsEveryStepCount) {
  auto model = tiny_model(3, torch::kFloat32);
  MetaLearner learner(meta_config(Algorithm::kMaml), LabelKind::kMulticlass, model);
  torch::manual_seed(9);
  const Batch support = toy_texts(6, 5), query = toy_texts(9, 5);
  const auto outputs = learner.outputs_at_steps(support, query, {0, 3});
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[1].sizes(), (std::vector<std::int64_t>{9, 3}));
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(outputs[0], model->forward(query, model->params()), 1e-5, 1e-6));
  }
  EXPECT_FALSE(torch::allclose(outputs[1], outputs[0]));
  EXPECT_TRUE(torch::allclose(learner.adapted_outputs(support, query, 3), outputs[1], 1e-5, 1e-6));
  // The default inner loop (meta.inner_params = "dense") leaves the embeddings as they were.
  const auto adapted = learner.adapted_parameters(support, 3);
  EXPECT_TRUE(torch::equal(adapted[0], model->params()[0].detach()));
  EXPECT_FALSE(torch::equal(adapted.back(), model->params().back().detach()));
}

TEST(TransformerMetaLearning, InnerLayersChooseWhatTheInnerLoopAdapts) {
  auto config = meta_config(Algorithm::kMaml);
  config.inner_layers = {-1};
  auto model = tiny_model(4, torch::kFloat32, /*layers=*/2);
  MetaLearner learner(config, LabelKind::kMulticlass, model);
  torch::manual_seed(2);
  const Batch support = toy_texts(6, 5);
  const auto adapted = learner.adapted_parameters(support, 2);
  const auto& names = model->names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool moved = !torch::equal(adapted[i], model->params()[i].detach());
    // The last layer (-1 of two) and the head adapt; the first layer and the embeddings not.
    const bool adapts = names[i].rfind("layer_1_", 0) == 0 || names[i].rfind("head_", 0) == 0;
    EXPECT_FALSE(moved && !adapts) << names[i] << " moved";
    if (names[i] == "layer_1_ff2_weight" || names[i] == "head_weight") {
      EXPECT_TRUE(moved) << names[i] << " did not move";
    }
  }
  config.inner_layers = {2};
  EXPECT_THROW(
      MetaLearner no_such_layer(config, LabelKind::kMulticlass, tiny_model(4, torch::kFloat32)),
      ml::ConfigError);
}

TEST(TransformerMetaLearning, AFewMetaStepsLearnAToyTextTask) {
  auto model = tiny_model(1, torch::kFloat32);
  MetaLearner learner(meta_config(Algorithm::kProtonet), LabelKind::kMulticlass, model);
  torch::optim::Adam adam(learner.meta_parameters(), torch::optim::AdamOptions(0.01));
  torch::manual_seed(7);
  double first = 0, last = 0;
  for (int it = 0; it < 60; ++it) {
    adam.zero_grad();
    const double loss = learner.accumulate_meta_gradient(toy_tasks(4));
    adam.step();
    if (it < 5) first += loss / 5;
    if (it >= 55) last += loss / 5;
  }
  EXPECT_LT(last, first * 0.8) << "first " << first << ", last " << last;
}

}  // namespace
