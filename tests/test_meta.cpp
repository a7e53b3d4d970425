// Tests of the meta-learning core: second-order gradients against finite differences, the
// exact first-order/second-order relation, and every algorithm learning on a task family.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "features/feature_space.hpp"
#include "meta/implicit_inner_loop.hpp"
#include "meta/meta_learner.hpp"
#include "meta/sinusoid.hpp"
#include "meta/stacked_inner_loop.hpp"
#include "models/batched_matmul.hpp"
#include "models/model.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

#include <iostream>

namespace {

using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::models::Batch;
using ml::models::FunctionalModel;
using ml::models::ModelShape;
using ml::tasks::LabelKind;
using torch::Tensor;

Batch random_batch(std::int64_t n, std::int64_t d, torch::Dtype dtype, bool binary) {
  Batch b;
  b.dense = torch::randn({n, d}, dtype);
  b.ids = torch::zeros({n, 0}, torch::kInt64);
  b.target = binary ? (torch::rand({n}, dtype) > 0.5).to(dtype) : torch::randn({n}, dtype);
  return b;
}

FunctionalModel tiny_model(torch::Dtype dtype, std::int64_t d = 3) {
  ModelShape shape;
  shape.dense_dim = d;
  shape.hidden = {5};
  FunctionalModel m(shape);
  m->to(dtype);
  return m;
}

ml::config::MetaConfig meta_config(const std::string& algorithm, int steps, double lr) {
  ml::config::MetaConfig c;
  c.algorithm = ml::testing::choice<ml::config::Algorithm>(algorithm);
  c.inner_steps = steps;
  c.inner_lr = lr;
  c.inner_params = ml::config::InnerParams::kAll;
  return c;
}

std::vector<Tensor> grads_of(const MetaLearner& learner) {
  std::vector<Tensor> g;
  for (const auto& p : learner.model()->params()) g.push_back(p.grad().clone());
  return g;
}

// Query loss after the inner loop, as a plain function of the initial parameters.
double adapted_query_loss(const FunctionalModel& model, const std::vector<Tensor>& params,
                          const TaskBatch& task, int steps, double lr) {
  std::vector<bool> all(params.size(), true);
  auto fast = ml::meta::inner_loop(*model, params, all, task.support, LabelKind::kBinary, steps, lr,
                                   /*create_graph=*/false);
  torch::NoGradGuard no_grad;
  return ml::models::task_loss(model->forward(task.query, fast), task.query.target,
                               LabelKind::kBinary)
      .item<double>();
}

// The layout of a fitted space with two dense features, its moments as given.
ml::features::FeatureSpace two_feature_space(float mean0, float mean1) {
  nlohmann::json j;
  to_json(j, ml::features::FeatureSpace());
  j["dense_names"] = {"row:discount", "item:weight"};
  j["mean"] = {mean0, mean1};
  j["scale"] = {1.0f, 1.0f};
  ml::features::FeatureSpace f;
  from_json(j, f);
  return f;
}

TEST(NonFiniteInput, NamesTheFeatureOrTargetANanLossComesFrom) {
  auto batch = [](std::vector<float> dense, std::vector<float> target) {
    Batch b;
    b.dense = torch::tensor(dense).reshape({2, 2});
    b.ids = torch::zeros({2, 2}, torch::kLong);
    b.target = torch::tensor(target);
    return b;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const auto space = two_feature_space(0, 0);
  const TaskBatch finite{batch({1, 2, 3, 4}, {0, 1}), batch({1, 2, 3, 4}, {1, 0})};
  EXPECT_EQ(ml::meta::non_finite_input(space, {finite}), "");
  // The second task's query holds the bad value: every set of every task is looked at.
  const TaskBatch bad_feature{batch({1, 2, 3, 4}, {0, 1}), batch({1, -inf, 3, 4}, {1, 0})};
  EXPECT_EQ(ml::meta::non_finite_input(space, {finite, bad_feature}),
            "dense feature 'item:weight' is not finite (-inf in 1 of 2 rows)");
  const TaskBatch bad_target{batch({1, 2, 3, 4}, {0, NAN}), batch({1, 2, 3, 4}, {1, 0})};
  EXPECT_EQ(ml::meta::non_finite_input(space, {bad_target})
                .find("the label target is not "
                      "finite in 1 of 2 rows"),
            0u);
  // Finite targets whose squares a float cannot hold (or not their sum, as the loss takes it):
  // the target is to blame, not the learning rates.
  const TaskBatch huge_target{batch({1, 2, 3, 4}, {1.5e19f, -1.5e19f}),
                              batch({1, 2, 3, 4}, {1, 0})};
  const std::string huge = ml::meta::non_finite_input(space, {finite, huge_target});
  EXPECT_EQ(huge.find("the label target is too large for the squared loss: its squares overflow "
                      "a float over 2 rows (largest magnitude 1.5e+19)"),
            0u)
      << huge;
  const TaskBatch square{batch({1, 2, 3, 4}, {1, 0}), batch({1, 2, 3, 4}, {0, 3e38f})};
  EXPECT_EQ(ml::meta::non_finite_input(space, {square}).find("the label target is too large"), 0u);
  // Squares that fit, at a scale where the inner steps overflow: named too; ordinary prices not.
  const TaskBatch large{batch({1, 2, 3, 4}, {1e15f, 2}), batch({1, 2, 3, 4}, {1, 0})};
  const std::string scale = ml::meta::non_finite_input(space, {large});
  EXPECT_EQ(scale.find("the label target reaches 1e+15 in magnitude"), 0u) << scale;
  const TaskBatch prices{batch({1, 2, 3, 4}, {999999, 2}), batch({1, 2, 3, 4}, {1, 0})};
  EXPECT_EQ(ml::meta::non_finite_input(space, {prices}), "");
  // Moments fitted over a non-finite value standardise every value to NaN: named as such.
  const std::string moments = ml::meta::non_finite_input(two_feature_space(inf, 0), {finite});
  EXPECT_EQ(moments.find("dense feature 'row:discount' has a non-finite training mean (inf)"), 0u)
      << moments;
}

TEST(MetaGradient, SecondOrderMatchesFiniteDifferences) {
  torch::manual_seed(1);
  FunctionalModel model = tiny_model(torch::kFloat64);
  TaskBatch task{random_batch(8, 3, torch::kFloat64, true),
                 random_batch(12, 3, torch::kFloat64, true)};
  MetaLearner learner(meta_config("maml", 2, 0.5), LabelKind::kBinary, model);
  learner.accumulate_meta_gradient({task});
  auto analytic = grads_of(learner);

  std::vector<Tensor> base;
  for (const auto& p : model->params()) base.push_back(p.detach().clone());
  const double eps = 1e-6;
  int checked = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    for (std::int64_t j = 0; j < base[i].numel(); j += 2) {
      auto plus = base, minus = base;
      plus[i] = base[i].clone();
      minus[i] = base[i].clone();
      plus[i].view(-1)[j] += eps;
      minus[i].view(-1)[j] -= eps;
      double numeric = (adapted_query_loss(model, plus, task, 2, 0.5) -
                        adapted_query_loss(model, minus, task, 2, 0.5)) /
                       (2 * eps);
      double value = analytic[i].view(-1)[j].item<double>();
      EXPECT_NEAR(value, numeric, 1e-7 + 1e-5 * std::abs(numeric))
          << "param " << i << "[" << j << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(MetaGradient, FirstOrderDiffersByExactlyTheSecondOrderTerm) {
  // One inner step: theta' = theta - a g_s(theta), so
  //   maml = (I - a H_s(theta)) g_q(theta')  and  fomaml = g_q(theta').
  torch::manual_seed(2);
  FunctionalModel model = tiny_model(torch::kFloat64);
  TaskBatch task{random_batch(10, 3, torch::kFloat64, true),
                 random_batch(10, 3, torch::kFloat64, true)};
  const double lr = 0.4;
  MetaLearner maml(meta_config("maml", 1, lr), LabelKind::kBinary, model);
  maml.accumulate_meta_gradient({task});
  auto g_maml = grads_of(maml);
  for (auto& p : model->params()) p.mutable_grad() = Tensor();
  MetaLearner fomaml(meta_config("fomaml", 1, lr), LabelKind::kBinary, model);
  fomaml.accumulate_meta_gradient({task});
  auto g_fo = grads_of(fomaml);

  // Independent computation of g_q(theta') and the Hessian-vector product H_s(theta) g_q.
  std::vector<Tensor> theta;
  for (const auto& p : model->params()) theta.push_back(p.detach().clone().requires_grad_(true));
  Tensor ls = ml::models::task_loss(model->forward(task.support, theta), task.support.target,
                                    LabelKind::kBinary);
  auto gs = torch::autograd::grad({ls}, theta, {}, true, true);
  std::vector<Tensor> adapted;
  for (std::size_t i = 0; i < theta.size(); ++i)
    adapted.push_back((theta[i] - lr * gs[i]).detach().requires_grad_(true));
  Tensor lq = ml::models::task_loss(model->forward(task.query, adapted), task.query.target,
                                    LabelKind::kBinary);
  auto gq = torch::autograd::grad({lq}, adapted);
  Tensor dot = torch::zeros({}, torch::kFloat64);
  for (std::size_t i = 0; i < theta.size(); ++i) dot = dot + (gs[i] * gq[i].detach()).sum();
  auto hv = torch::autograd::grad({dot}, theta);

  double second_order_size = 0;
  for (std::size_t i = 0; i < theta.size(); ++i) {
    EXPECT_TRUE(torch::allclose(g_fo[i], gq[i], 1e-10, 1e-12)) << "fomaml != g_q at param " << i;
    EXPECT_TRUE(torch::allclose(g_maml[i] - g_fo[i], -lr * hv[i], 1e-8, 1e-10))
        << "maml - fomaml != -a H g_q at param " << i;
    second_order_size += (lr * hv[i]).abs().sum().item<double>();
  }
  EXPECT_GT(second_order_size, 1e-4);  // the term is really there, not trivially zero
}

// A family of related logistic tasks: w_t = u + spread * z_t on 6 features.
std::vector<TaskBatch> logistic_tasks(int count, int k, int q, std::uint64_t seed) {
  torch::manual_seed(12345);  // the family's shared direction: the same for every draw
  Tensor u = torch::randn({6});
  std::vector<TaskBatch> out;
  torch::manual_seed(seed);
  for (int t = 0; t < count; ++t) {
    Tensor w = u + 0.7 * torch::randn({6});
    auto make = [&](int n) {
      Batch b;
      b.dense = torch::randn({n, 6});
      b.ids = torch::zeros({n, 0}, torch::kInt64);
      b.target = (b.dense.matmul(w) * 2 + 0.3 * torch::randn({n}) > 0).to(torch::kFloat32);
      return b;
    };
    out.push_back({make(k), make(q)});
  }
  return out;
}

class EveryAlgorithm : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryAlgorithm, MetaTrainingLowersAdaptedQueryLoss) {
  const std::string algorithm = GetParam();
  auto tasks = logistic_tasks(64, 10, 20, 5);
  torch::manual_seed(3);
  ModelShape shape;
  shape.dense_dim = 6;
  shape.hidden = {16};
  auto config = meta_config(algorithm, 3, 0.3);
  config.inner_params = ml::config::InnerParams::kDense;
  MetaLearner learner(config, LabelKind::kBinary, FunctionalModel(shape));
  torch::optim::Adam optimizer(learner.meta_parameters(), torch::optim::AdamOptions(0.01));
  auto held_out = logistic_tasks(16, 10, 40, 77);
  auto held_out_loss = [&] {
    double sum = 0;
    for (const auto& t : held_out) {
      Tensor out = learner.adapted_outputs(t.support, t.query, 3);
      sum += ml::models::task_loss(out, t.query.target, LabelKind::kBinary).item<double>();
    }
    return sum / static_cast<double>(held_out.size());
  };
  const double before = held_out_loss();
  for (int it = 0; it < 40; ++it) {
    optimizer.zero_grad();
    std::vector<TaskBatch> batch(tasks.begin() + (it * 4) % 64, tasks.begin() + (it * 4) % 64 + 4);
    double loss = learner.accumulate_meta_gradient(batch);
    ASSERT_TRUE(std::isfinite(loss));
    optimizer.step();
  }
  const double after = held_out_loss();
  EXPECT_LT(after, before - 0.05) << algorithm << ": " << before << " -> " << after;
}

INSTANTIATE_TEST_SUITE_P(MetaLearning, EveryAlgorithm,
                         ::testing::Values("maml", "fomaml", "reptile", "anil", "metasgd",
                                           "protonet", "pretrain"));

TEST(MetaSgd, LearnsItsInnerLearningRates) {
  auto tasks = logistic_tasks(8, 10, 20, 9);
  torch::manual_seed(4);
  ModelShape shape;
  shape.dense_dim = 6;
  shape.hidden = {8};
  MetaLearner learner(meta_config("metasgd", 2, 0.1), LabelKind::kBinary, FunctionalModel(shape));
  ASSERT_EQ(learner.inner_learning_rates().size(), learner.model()->params().size());
  torch::optim::Adam optimizer(learner.meta_parameters(), torch::optim::AdamOptions(0.01));
  optimizer.zero_grad();
  learner.accumulate_meta_gradient(tasks);
  for (const auto& lr : learner.inner_learning_rates()) ASSERT_TRUE(lr.grad().defined());
  optimizer.step();
  double moved = 0;
  for (const auto& lr : learner.inner_learning_rates())
    moved += (lr - 0.1).abs().sum().item<double>();
  EXPECT_GT(moved, 0.0);
}

TEST(ProtoNet, PrototypeLogitsClassifySeparatedClusters) {
  torch::manual_seed(5);
  ModelShape shape;
  shape.dense_dim = 2;
  shape.hidden = {8};
  MetaLearner learner(meta_config("protonet", 1, 0.1), LabelKind::kBinary, FunctionalModel(shape));
  auto cluster = [](int n, float cx) {
    Batch b;
    b.dense = torch::randn({n, 2}) * 0.05 + torch::tensor({cx, cx});
    b.ids = torch::zeros({n, 0}, torch::kInt64);
    b.target = torch::full({n}, cx > 0 ? 1.0f : 0.0f);
    return b;
  };
  Batch support = ml::models::concat(cluster(5, -2), cluster(5, 2));
  Batch query = ml::models::concat(cluster(10, -2), cluster(10, 2));
  Tensor logits = learner.adapted_outputs(support, query, 0).squeeze(1);
  EXPECT_EQ(((logits > 0).to(torch::kFloat32) == query.target).sum().item<int>(), 20);
}

}  // namespace

namespace {

// The MAML paper's sinusoid experiment, shortened to keep the suite fast; the full-size run is
// bench/sinusoid (scripts/bench_sinusoid.sh).
TEST(Sinusoid, MamlAdaptsWherePretrainingCannot) {
  ml::meta::SinusoidOptions o;
  o.iterations = 1500;
  o.eval_tasks = 50;
  auto maml = ml::meta::run_sinusoid(o);
  o.algorithm = ml::config::Algorithm::kPretrain;
  auto pretrain = ml::meta::run_sinusoid(o);
  const double maml10 = maml.query_mse.back(), pretrain10 = pretrain.query_mse.back();
  std::cout << "sinusoid query MSE after 10 steps: maml " << maml10 << ", pretrain " << pretrain10
            << " (" << maml.seconds + pretrain.seconds << " s)\n";
  EXPECT_LT(maml10, 0.5 * pretrain10);
  EXPECT_LT(maml10, maml.query_mse.front());  // adaptation itself helps
}

}  // namespace

namespace {

TEST(EmbeddingMlp, EmbeddingsAreMetaUpdatedButNotAdaptedByDefault) {
  torch::manual_seed(6);
  ModelShape shape;
  shape.type = ml::config::ModelType::kEmbeddingMlp;
  shape.dense_dim = 3;
  shape.hidden = {8};
  shape.embedding_dim = 4;
  shape.id_cardinalities = {50, 7};
  FunctionalModel model(shape);
  ASSERT_EQ(model->groups().front(), ml::models::ParamGroup::kEmbedding);
  auto batch = [](std::int64_t n) {
    Batch b;
    b.dense = torch::randn({n, 3});
    b.ids = torch::stack({torch::randint(50, {n}), torch::randint(7, {n})}, 1);
    b.target = (torch::rand({n}) > 0.5).to(torch::kFloat32);
    return b;
  };
  TaskBatch task{batch(8), batch(12)};
  EXPECT_EQ(model->forward(task.query, model->params()).sizes(),
            (std::vector<std::int64_t>{12, 1}));

  auto config = meta_config("maml", 2, 0.3);
  config.inner_params = ml::config::InnerParams::kDense;
  MetaLearner learner(config, LabelKind::kBinary, model);
  auto adapted = learner.adapted_parameters(task.support, 2);
  auto params = model->params();
  EXPECT_TRUE(torch::equal(adapted[0], params[0].detach()));           // embedding table untouched
  EXPECT_FALSE(torch::equal(adapted.back(), params.back().detach()));  // head adapted
  learner.accumulate_meta_gradient({task});
  EXPECT_FALSE(params[0].grad().defined());  // no table-sized gradient...
  const auto& sparse = learner.row_sparse_gradients();
  ASSERT_EQ(sparse.size(), 2u);
  EXPECT_EQ(sparse[0].parameter, 0u);
  EXPECT_GT(sparse[0].values.abs().sum().item<double>(), 0.0);  // ...but meta-updated rows
}

}  // namespace

// --- The task-batched inner loop against the one-task reference ---------------------------

namespace stacked {

struct Family {
  ml::models::ModelShape shape;
  LabelKind kind;
};

Batch random_task_batch(std::int64_t n, const Family& f) {
  Batch b;
  b.dense = torch::randn({n, f.shape.dense_dim}, torch::kFloat64);
  std::vector<Tensor> id_columns;
  for (auto rows : f.shape.id_cardinalities)
    id_columns.push_back(torch::randint(rows, {n, 1}, torch::kInt64));
  b.ids = id_columns.empty() ? torch::zeros({n, 0}, torch::kInt64) : torch::cat(id_columns, 1);
  switch (f.kind) {
    case LabelKind::kBinary:
      b.target = (torch::rand({n}, torch::kFloat64) > 0.5).to(torch::kFloat64);
      break;
    case LabelKind::kRegression:
      b.target = torch::randn({n}, torch::kFloat64);
      break;
    case LabelKind::kMulticlass:
      b.target = torch::randint(f.shape.outputs, {n}, torch::kInt64);
      break;
  }
  return b;
}

// Every meta-parameter's .grad() (zeros where undefined).
std::vector<Tensor> dense_grads(const MetaLearner& learner) {
  std::vector<Tensor> g;
  for (const auto& p : learner.meta_parameters())
    g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return g;
}

// The meta-gradient accumulate_meta_gradient() left, with its row-sparse table gradients
// scattered onto zero tables.
std::vector<Tensor> dense_meta_gradient(const MetaLearner& learner) {
  std::vector<Tensor> g = dense_grads(learner);
  const auto sparse_params = learner.row_sparse_parameters();
  for (const auto& sparse : learner.row_sparse_gradients()) {
    EXPECT_TRUE(sparse_params.at(sparse.parameter));
    EXPECT_EQ(sparse.values.size(0), sparse.rows.size(0));
    g[sparse.parameter].index_copy_(0, sparse.rows, sparse.values);
  }
  return g;
}

// Meta-gradients of one meta-batch whose tasks all differ in size (so padding is exercised),
// computed stacked and one task at a time, must agree to float64 rounding.
void expect_stacked_matches_reference(const std::string& algorithm, const Family& family,
                                      const std::string& inner_params, bool equal_sizes = false) {
  SCOPED_TRACE(algorithm + " / " + ml::enum_name(family.shape.type) + " / " + inner_params +
               (equal_sizes ? " / equal sizes" : " / padded"));
  torch::manual_seed(11);
  FunctionalModel model(family.shape);
  model->to(torch::kFloat64);
  auto config = meta_config(algorithm, 3, 0.3);
  config.inner_params = ml::testing::choice<ml::config::InnerParams>(inner_params);
  MetaLearner learner(config, family.kind, model);
  for (auto& lr : learner.inner_learning_rates()) lr.set_data(lr.detach().to(torch::kFloat64));
  std::vector<TaskBatch> tasks;
  for (std::int64_t t = 0; t < 4; ++t)
    tasks.push_back(
        equal_sizes
            ? TaskBatch{random_task_batch(5, family), random_task_batch(7, family)}
            : TaskBatch{random_task_batch(4 + t, family), random_task_batch(9 - 2 * t, family)});

  std::vector<Tensor> before;
  for (const auto& p : learner.meta_parameters()) before.push_back(p.detach().clone());
  auto gradients = [&](bool stacked) {
    for (auto& p : learner.meta_parameters()) p.mutable_grad() = Tensor();
    double loss = stacked ? learner.accumulate_meta_gradient(tasks)
                          : learner.accumulate_meta_gradient_per_task(tasks);
    return std::make_pair(loss, stacked ? dense_meta_gradient(learner) : dense_grads(learner));
  };
  auto [stacked_loss, stacked_grads] = gradients(true);
  auto [reference_loss, reference_grads] = gradients(false);
  EXPECT_NEAR(stacked_loss, reference_loss, 1e-10 * (1 + std::abs(reference_loss)));
  double size = 0;
  const auto params = learner.meta_parameters();
  for (std::size_t i = 0; i < reference_grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(stacked_grads[i], reference_grads[i], 1e-8, 1e-11))
        << "parameter " << i << ": largest difference "
        << (stacked_grads[i] - reference_grads[i]).abs().max().item<double>();
    EXPECT_TRUE(torch::equal(params[i].detach(), before[i]))
        << "the meta-gradient step changed parameter " << i;
    size += reference_grads[i].abs().sum().item<double>();
  }
  EXPECT_GT(size, 1e-3);  // a real gradient, not two zeros agreeing
}

Family mlp(LabelKind kind, std::int64_t outputs = 1) {
  Family f;
  f.kind = kind;
  f.shape.dense_dim = 5;
  f.shape.hidden = {7, 6};
  f.shape.outputs = outputs;
  return f;
}

Family embedding_mlp(LabelKind kind) {
  Family f = mlp(kind);
  f.shape.type = ml::config::ModelType::kEmbeddingMlp;
  f.shape.id_cardinalities = {30, 4};
  f.shape.embedding_dim = 3;
  return f;
}

}  // namespace stacked

TEST(TaskStack, JoinedStackEqualsTheStackOfConcatenatedBatches) {
  // Reptile's support-then-query stack is built without joining each task's batches; it must
  // hold what stacking the joined batches holds, padding included (one task with no query
  // rows, one with no support rows).
  torch::manual_seed(5);
  for (const stacked::Family& family :
       {stacked::mlp(LabelKind::kBinary), stacked::embedding_mlp(LabelKind::kMulticlass)}) {
    std::vector<Batch> supports, queries, joined;
    for (std::int64_t t = 0; t < 4; ++t) {
      supports.push_back(stacked::random_task_batch(t == 3 ? 0 : 2 + t, family));
      queries.push_back(stacked::random_task_batch(t == 2 ? 0 : 5 - t, family));
      joined.push_back(ml::models::concat(supports.back(), queries.back()));
    }
    const auto expected = ml::models::stack_tasks(joined);
    const auto got = ml::models::stack_joined_tasks(supports, queries);
    EXPECT_EQ(got.padded, expected.padded);
    for (auto field : {&ml::models::StackedBatch::dense, &ml::models::StackedBatch::ids,
                       &ml::models::StackedBatch::target, &ml::models::StackedBatch::weight,
                       &ml::models::StackedBatch::count}) {
      EXPECT_EQ((got.*field).sizes(), (expected.*field).sizes());
      EXPECT_EQ((got.*field).scalar_type(), (expected.*field).scalar_type());
      EXPECT_TRUE(torch::equal(got.*field, expected.*field));
    }
  }
  // Texts of different lengths are joined by concat's rules (padded to the longer).
  auto text = [](std::int64_t n, std::int64_t length) {
    Batch b;
    b.dense = torch::zeros({n, 0});
    b.ids = torch::zeros({n, 0}, torch::kInt64);
    b.target = torch::randint(3, {n}, torch::kInt64);
    b.tokens = torch::randint(1, 50, {n, length}, torch::kInt64);
    b.mask = torch::ones({n, length}, torch::kBool);
    return b;
  };
  const std::vector<Batch> first = {text(2, 4), text(3, 6)}, second = {text(3, 7), text(1, 2)};
  const auto got = ml::models::stack_joined_tasks(first, second);
  const auto expected = ml::models::stack_tasks(
      {ml::models::concat(first[0], second[0]), ml::models::concat(first[1], second[1])});
  EXPECT_EQ(got.tokens.sizes(), (std::vector<std::int64_t>{2, 5, 7}));
  EXPECT_TRUE(torch::equal(got.tokens, expected.tokens));
  EXPECT_TRUE(torch::equal(got.mask, expected.mask));
  EXPECT_TRUE(torch::equal(got.weight, expected.weight));
  EXPECT_THROW(ml::models::stack_joined_tasks({text(2, 4)}, {}), ml::DataError);
  // A field with more rows than the batch's features is refused, never copied past its task.
  Batch malformed = text(2, 4);
  malformed.target = torch::zeros({5}, torch::kInt64);
  EXPECT_THROW(ml::models::stack_tasks({malformed, text(3, 4)}), ml::DataError);
}

TEST(StackedInnerLoop, EveryGradientAlgorithmMatchesThePerTaskReference) {
  for (const std::string algorithm : {"maml", "fomaml", "reptile", "anil", "metasgd", "protonet"})
    for (bool equal_sizes : {false, true})
      stacked::expect_stacked_matches_reference(algorithm, stacked::mlp(LabelKind::kBinary), "all",
                                                equal_sizes);
}

TEST(StackedInnerLoop, WideLayersKeptImplicitlyMatchTheReference) {
  // Layers wide against the support rows, so maml keeps the tower implicitly (the head, one
  // output, stays explicit) wherever it does not take the hand-written dense path: with
  // embedding tables that adapt ("all"). The same meta-gradient as the per-task loop, as the
  // hand-written path's ("dense", and the model without tables).
  stacked::Family wide = stacked::mlp(LabelKind::kBinary);
  wide.shape.dense_dim = 12;
  wide.shape.hidden = {24, 16};
  EXPECT_TRUE(ml::meta::implicit_layer_pays(12, 24, 7));
  EXPECT_TRUE(ml::meta::implicit_layer_pays(24, 16, 7));
  EXPECT_FALSE(ml::meta::implicit_layer_pays(16, 1, 7));
  for (bool equal_sizes : {false, true})
    stacked::expect_stacked_matches_reference("maml", wide, "all", equal_sizes);
  stacked::Family wide_embeddings = stacked::embedding_mlp(LabelKind::kBinary);
  wide_embeddings.shape.dense_dim = 12;
  wide_embeddings.shape.hidden = {24, 16};
  for (const std::string which : {"all", "dense"})
    stacked::expect_stacked_matches_reference("maml", wide_embeddings, which);
}

TEST(StackedInnerLoop, RegressionAndMulticlassHeadsMatchTheReference) {
  for (const std::string algorithm : {"maml", "fomaml", "reptile"}) {
    stacked::expect_stacked_matches_reference(algorithm, stacked::mlp(LabelKind::kRegression),
                                              "all");
    stacked::expect_stacked_matches_reference(algorithm, stacked::mlp(LabelKind::kMulticlass, 3),
                                              "all");
  }
}

TEST(StackedInnerLoop, AdaptedEmbeddingsGatherOnlyEachTasksRows) {
  // "all" adapts the embedding tables per task (gathered rows); "dense" shares them.
  for (const std::string algorithm : {"maml", "fomaml", "reptile", "metasgd"})
    for (const std::string which : {"all", "dense", "head"})
      stacked::expect_stacked_matches_reference(algorithm,
                                                stacked::embedding_mlp(LabelKind::kBinary), which);
}

TEST(RowSparseMetaGradient, RowsAreTheBatchsIdsAndValuesTheDenseGradientsNonzeroRows) {
  const auto family = stacked::embedding_mlp(LabelKind::kBinary);
  for (const std::string algorithm :
       {"maml", "fomaml", "reptile", "anil", "metasgd", "protonet", "pretrain"}) {
    SCOPED_TRACE(algorithm);
    torch::manual_seed(21);
    FunctionalModel model(family.shape);
    model->to(torch::kFloat64);
    auto config = meta_config(algorithm, 2, 0.3);
    MetaLearner learner(config, family.kind, model);
    for (auto& lr : learner.inner_learning_rates()) lr.set_data(lr.detach().to(torch::kFloat64));
    std::vector<TaskBatch> tasks;
    for (std::int64_t t = 0; t < 3; ++t)
      tasks.push_back(
          {stacked::random_task_batch(4 + t, family), stacked::random_task_batch(6, family)});
    learner.accumulate_meta_gradient(tasks);
    const auto sparse = learner.row_sparse_gradients();
    for (auto& p : learner.meta_parameters()) p.mutable_grad() = Tensor();
    learner.accumulate_meta_gradient_per_task(tasks);
    const auto reference = stacked::dense_grads(learner);
    ASSERT_GE(sparse.size(), 2u);
    for (const auto& g : sparse) {
      SCOPED_TRACE("parameter " + std::to_string(g.parameter));
      const Tensor& dense = reference[g.parameter];
      // The rows are the field's distinct ids over the meta-batch, ascending.
      const auto field = static_cast<std::int64_t>(g.parameter % model->params().size());
      std::vector<Tensor> ids;
      for (const auto& t : tasks)
        for (const Batch* b : {&t.support, &t.query}) ids.push_back(b->ids.select(1, field));
      EXPECT_TRUE(torch::equal(g.rows, std::get<0>(torch::_unique2(torch::cat(ids), true))));
      EXPECT_TRUE(torch::allclose(g.values, dense.index_select(0, g.rows), 1e-8, 1e-11));
      // Every other row of the dense meta-gradient is exactly zero.
      Tensor untouched = torch::ones({dense.size(0)}, torch::kBool).index_fill_(0, g.rows, false);
      EXPECT_EQ(dense.index({untouched}).abs().sum().item<double>(), 0.0);
    }
  }
}

TEST(StackedInnerLoop, SingleTaskFirstOrderLeavesTheWeightsAlone) {
  // With one task the per-task copy could alias the weights; the in-place inner steps must not
  // write through to them.
  torch::manual_seed(5);
  FunctionalModel model = tiny_model(torch::kFloat64);
  std::vector<Tensor> before;
  for (const auto& p : model->params()) before.push_back(p.detach().clone());
  for (const std::string algorithm : {"fomaml", "reptile"}) {
    MetaLearner learner(meta_config(algorithm, 3, 0.5), LabelKind::kBinary, model);
    learner.accumulate_meta_gradient({TaskBatch{random_batch(6, 3, torch::kFloat64, true),
                                                random_batch(6, 3, torch::kFloat64, true)}});
    const auto params = model->params();
    for (std::size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(torch::equal(params[i].detach(), before[i])) << algorithm << " param " << i;
  }
}

TEST(Reptile, LoggedLossIsTheQueryLossAfterAdaptingOnTheSupportAlone) {
  // Reptile's inner loop walks support + query; the loss it reports must not be measured at the
  // walk's end, on query rows it has just trained on, but after its first step, which trains on
  // the whole support and nothing else, whatever the task sizes.
  torch::manual_seed(17);
  FunctionalModel model = tiny_model(torch::kFloat64);
  const int steps = 4;
  const double lr = 0.5;
  std::vector<TaskBatch> tasks = {
      {random_batch(5, 3, torch::kFloat64, true), random_batch(9, 3, torch::kFloat64, true)},
      {random_batch(7, 3, torch::kFloat64, true), random_batch(6, 3, torch::kFloat64, true)}};
  std::vector<Tensor> params;
  for (const auto& p : model->params()) params.push_back(p.detach().clone());
  double support_only = 0, after_walk = 0;
  for (const auto& t : tasks) {
    support_only += adapted_query_loss(model, params, t, 1, lr) / tasks.size();
    // What the loss was before: the query loss where the walk ends, having fitted the query.
    std::vector<bool> all(params.size(), true);
    Batch joined = ml::models::concat(t.support, t.query);
    std::vector<Tensor> fast = params;
    const std::int64_t k = t.support.size(), n = joined.size();
    for (int s = 0; s < steps; ++s) {
      const std::int64_t lo = (s * k) % n, hi = std::min(lo + k, n);
      fast = ml::meta::inner_loop(*model, fast, all, joined.rows(lo, hi), LabelKind::kBinary, 1, lr,
                                  false);
    }
    torch::NoGradGuard no_grad;
    after_walk +=
        ml::models::task_loss(model->forward(t.query, fast), t.query.target, LabelKind::kBinary)
            .item<double>() /
        tasks.size();
  }
  ASSERT_GT(std::abs(support_only - after_walk), 1e-3)
      << "the planted tasks cannot tell them apart";
  MetaLearner learner(meta_config("reptile", steps, lr), LabelKind::kBinary, model);
  EXPECT_NEAR(learner.accumulate_meta_gradient(tasks), support_only, 1e-10);
  for (auto& p : model->params()) p.mutable_grad() = Tensor();
  EXPECT_NEAR(learner.accumulate_meta_gradient_per_task(tasks), support_only, 1e-10);
}

// --- Second order with every linear layer kept implicitly -----------------------------------

namespace {

// Query outputs after 3 second-order steps and the gradient of their loss with respect to
// the meta-parameters, with the explicit stacked loop or with every linear layer implicit.
std::pair<Tensor, std::vector<Tensor>> second_order_query(const stacked::Family& family,
                                                          const std::string& which, bool implicit) {
  torch::manual_seed(5);
  FunctionalModel model(family.shape);
  model->to(torch::kFloat64);
  std::vector<Batch> supports, queries;
  for (std::int64_t t = 0; t < 3; ++t) {
    supports.push_back(stacked::random_task_batch(3 + t, family));  // padded
    queries.push_back(stacked::random_task_batch(6 - t, family));
  }
  auto support = ml::models::stack_tasks(supports), query = ml::models::stack_tasks(queries);
  const auto mask =
      ml::models::adapt_mask(*model, ml::testing::choice<ml::config::InnerParams>(which));
  bool adapts_embeddings = false;
  for (std::size_t i = 0; i < mask.size(); ++i)
    adapts_embeddings |= mask[i] && model->groups()[i] == ml::models::ParamGroup::kEmbedding;
  std::vector<Tensor> rows;
  if (adapts_embeddings) rows = ml::models::gather_embedding_rows({&support, &query});
  const auto params = model->params();
  Tensor out;
  if (implicit) {
    ml::meta::ImplicitInnerLoop inner(*model, params, mask, 0.3, 3, support.rows(), rows,
                                      ml::meta::ImplicitInnerLoop::Layers::kEveryLinear);
    EXPECT_EQ(inner.implicit_layers(), family.shape.hidden.size() + 1);
    for (int s = 0; s < 3; ++s) inner.step(support, family.kind);
    out = inner.forward(query);
  } else {
    auto fast = ml::meta::per_task_parameters(*model, params, mask, 3, rows, true);
    fast = ml::meta::stacked_inner_loop(*model, fast, mask, support, family.kind, 3, 0.3, true,
                                        nullptr);
    out = model->forward_stacked(query, fast);
  }
  Tensor loss = ml::models::task_losses(out, query, family.kind).mean();
  auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = torch::zeros_like(params[i]);
  return {out.detach(), grads};
}

void expect_implicit_matches_explicit(const stacked::Family& family, const std::string& which) {
  SCOPED_TRACE(ml::enum_name(family.shape.type) + " / " + which);
  auto [explicit_out, explicit_grads] = second_order_query(family, which, false);
  auto [implicit_out, implicit_grads] = second_order_query(family, which, true);
  EXPECT_TRUE(torch::allclose(implicit_out, explicit_out, 1e-9, 1e-12));
  double size = 0;
  for (std::size_t i = 0; i < explicit_grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(implicit_grads[i], explicit_grads[i], 1e-8, 1e-11))
        << "parameter " << i << ": largest difference "
        << (implicit_grads[i] - explicit_grads[i]).abs().max().item<double>();
    size += explicit_grads[i].abs().sum().item<double>();
  }
  EXPECT_GT(size, 1e-3);
}

}  // namespace

TEST(ImplicitInnerLoop, EveryLayerImplicitEqualsTheExplicitStackedLoop) {
  expect_implicit_matches_explicit(stacked::mlp(LabelKind::kBinary), "all");
  expect_implicit_matches_explicit(stacked::mlp(LabelKind::kRegression), "all");
  expect_implicit_matches_explicit(stacked::mlp(LabelKind::kMulticlass, 3), "all");
  // Adapted embeddings change the first layer's inputs at every step (its history grows);
  // shared ones feed it inputs that carry a gradient.
  expect_implicit_matches_explicit(stacked::embedding_mlp(LabelKind::kBinary), "all");
  expect_implicit_matches_explicit(stacked::embedding_mlp(LabelKind::kBinary), "dense");
}

TEST(BatchedMatmul, TransposeFlagsMatchBmmToTheSecondDerivative) {
  torch::manual_seed(3);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string(ta ? "T" : "N") + (tb ? "T" : "N"));
      auto make = [](bool transposed, std::int64_t rows, std::int64_t cols) {
        return (transposed ? torch::randn({4, cols, rows}, torch::kFloat64)
                           : torch::randn({4, rows, cols}, torch::kFloat64))
            .requires_grad_(true);
      };
      Tensor a = make(ta, 3, 5), b = make(tb, 5, 2);
      auto op = [](const Tensor& x, bool t) { return t ? x.transpose(1, 2) : x; };
      Tensor weight = torch::randn({4, 3, 2}, torch::kFloat64);
      auto derivatives = [&](const Tensor& product) {
        Tensor first = (product * weight).sum();
        auto g = torch::autograd::grad({first}, {a, b}, {}, true, true);
        Tensor second = (g[0] * g[0]).sum() + (g[1] * g[1].sin()).sum();
        auto h = torch::autograd::grad({second}, {a, b});
        return std::vector<Tensor>{product, g[0], g[1], h[0], h[1]};
      };
      auto ours = derivatives(ml::models::batched_matmul(a, b, ta, tb));
      auto reference = derivatives(torch::bmm(op(a, ta), op(b, tb)));
      for (std::size_t k = 0; k < ours.size(); ++k)
        EXPECT_TRUE(torch::allclose(ours[k], reference[k], 1e-12, 1e-12)) << "derivative " << k;
      // The point of the flags: gradients come back in the operands' own layout.
      EXPECT_TRUE(ours[1].is_contiguous());
      EXPECT_TRUE(ours[2].is_contiguous());
    }
}
