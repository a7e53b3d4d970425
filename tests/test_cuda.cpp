// The CUDA path (issue 17): every algorithm's meta-step on the GPU against the CPU's, the
// batched products' fallback to torch::bmm there, episodes moved to the device, and train /
// eval / adapt / predict end to end with --device cuda, with the adapted model read back on the
// CPU. Skipped, saying so, where LibTorch sees no CUDA device; ML_CUDA_TESTS_ON_CPU=1 runs the
// same comparisons with the CPU standing in for the GPU (both sides then agree trivially: that
// only checks the tests' own plumbing, on a machine without a GPU).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "meta/meta_learner.hpp"
#include "models/batched_matmul.hpp"
#include "models/model.hpp"
#include "models/transformer.hpp"
#include "test_support.hpp"

namespace {

using ml::config::Algorithm;
using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::models::Batch;
using ml::tasks::LabelKind;
using torch::Tensor;

// The device the tests run on: the first GPU, or the CPU under ML_CUDA_TESTS_ON_CPU=1; none
// (the test skips) otherwise.
std::optional<torch::Device> test_device() {
  if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
  const char* on_cpu = std::getenv("ML_CUDA_TESTS_ON_CPU");
  if (on_cpu && std::string(on_cpu) == "1") return torch::Device(torch::kCPU);
  return std::nullopt;
}

#define REQUIRE_TEST_DEVICE(device)                                                           \
  const std::optional<torch::Device> device##_found = test_device();                          \
  if (!device##_found)                                                                        \
    GTEST_SKIP() << "no CUDA device (LibTorch " << TORCH_VERSION                              \
                 << " sees none): the CUDA tests run on a GPU machine, scripts/gpu_check.sh"; \
  const torch::Device device = *device##_found

Batch feature_batch(std::int64_t n, std::int64_t dense, const std::vector<std::int64_t>& tables,
                    LabelKind kind, std::int64_t classes) {
  Batch b;
  b.dense = torch::randn({n, dense});
  std::vector<Tensor> ids;
  for (auto rows : tables) ids.push_back(torch::randint(rows, {n, 1}, torch::kInt64));
  b.ids = ids.empty() ? torch::zeros({n, 0}, torch::kInt64) : torch::cat(ids, 1);
  b.target = kind == LabelKind::kMulticlass ? torch::randint(classes, {n}, torch::kInt64)
                                            : (torch::rand({n}) > 0.5).to(torch::kFloat32);
  return b;
}

Batch token_batch(std::int64_t n, std::int64_t length, std::int64_t vocab, std::int64_t classes) {
  Batch b;
  b.target = torch::randint(classes, {n}, torch::kInt64);
  b.tokens = torch::randint(1, vocab, {n, length}, torch::kInt64);
  const Tensor lengths = torch::randint(2, length + 1, {n, 1}, torch::kInt64);
  b.mask = torch::arange(length, torch::kInt64).unsqueeze(0) < lengths;
  b.tokens.masked_fill_(b.mask.logical_not(), 0);
  b.dense = torch::empty({n, 0});
  b.ids = torch::empty({n, 0}, torch::kInt64);
  return b;
}

// Every meta-parameter's gradient on the CPU, the row-sparse ones scattered onto zeros.
std::vector<Tensor> meta_gradient_on_cpu(const MetaLearner& learner) {
  std::vector<Tensor> g;
  for (const auto& p : learner.meta_parameters())
    g.push_back(p.grad().defined() ? p.grad().to(torch::kCPU) : torch::zeros_like(p).cpu());
  for (const auto& sparse : learner.row_sparse_gradients())
    g[sparse.parameter].index_copy_(0, sparse.rows.cpu(), sparse.values.cpu());
  return g;
}

struct Workload {
  std::string name;
  LabelKind kind;
  std::function<std::shared_ptr<ml::models::Network>()> model;
  std::function<Batch()> support, query;
};

std::vector<Workload> workloads() {
  ml::models::ModelShape mlp;
  mlp.dense_dim = 6;
  mlp.hidden = {16, 8};
  ml::models::ModelShape embedding = mlp;
  embedding.type = ml::config::ModelType::kEmbeddingMlp;
  embedding.id_cardinalities = {40, 5};
  embedding.embedding_dim = 4;
  ml::models::ModelShape multiclass = mlp;
  multiclass.outputs = 4;
  ml::models::TransformerShape transformer;
  transformer.vocab_size = 30;
  transformer.max_len = 7;
  transformer.model_dim = 16;
  transformer.heads = 2;
  transformer.layers = 2;
  transformer.ff_dim = 24;
  transformer.outputs = 3;
  auto mlp_model = [](ml::models::ModelShape shape) {
    return [shape] { return ml::models::FunctionalModel(shape).ptr(); };
  };
  return {
      {"mlp binary", LabelKind::kBinary, mlp_model(mlp),
       [] { return feature_batch(6, 6, {}, LabelKind::kBinary, 1); },
       [] { return feature_batch(10, 6, {}, LabelKind::kBinary, 1); }},
      {"embedding mlp", LabelKind::kBinary, mlp_model(embedding),
       [] {
         return feature_batch(6, 6, {40, 5}, LabelKind::kBinary, 1);
       },
       [] {
         return feature_batch(10, 6, {40, 5}, LabelKind::kBinary, 1);
       }},
      {"mlp multiclass", LabelKind::kMulticlass, mlp_model(multiclass),
       [] { return feature_batch(8, 6, {}, LabelKind::kMulticlass, 4); },
       [] { return feature_batch(12, 6, {}, LabelKind::kMulticlass, 4); }},
      {"transformer", LabelKind::kMulticlass,
       [transformer] { return std::make_shared<ml::models::TransformerImpl>(transformer); },
       [] { return token_batch(6, 7, 30, 3); }, [] { return token_batch(9, 7, 30, 3); }},
  };
}

TEST(CudaMetaStep, EveryAlgorithmsMetaGradientOnTheDeviceEqualsTheCpus) {
  REQUIRE_TEST_DEVICE(device);
  for (const Workload& w : workloads())
    for (const char* algorithm : {"maml", "fomaml", "reptile", "anil", "metasgd", "protonet"}) {
      SCOPED_TRACE(w.name + " / " + algorithm);
      ml::config::MetaConfig config;
      config.algorithm = ml::testing::choice<Algorithm>(algorithm);
      config.inner_steps = 2;
      config.inner_lr = 0.2;
      torch::manual_seed(3);
      std::vector<TaskBatch> tasks;
      for (int t = 0; t < 4; ++t) tasks.push_back({w.support(), w.query()});
      std::vector<TaskBatch> device_tasks;
      for (const auto& t : tasks)
        device_tasks.push_back({t.support.to(device), t.query.to(device)});
      torch::manual_seed(5);
      MetaLearner on_cpu(config, w.kind, w.model());
      torch::manual_seed(5);
      auto device_model = w.model();
      device_model->to(device);
      MetaLearner on_device(config, w.kind, device_model);
      const double cpu_loss = on_cpu.accumulate_meta_gradient(tasks);
      const double device_loss = on_device.accumulate_meta_gradient(device_tasks);
      EXPECT_NEAR(device_loss, cpu_loss, 1e-4 * (1 + std::abs(cpu_loss)));
      const auto expected = meta_gradient_on_cpu(on_cpu);
      const auto got = meta_gradient_on_cpu(on_device);
      ASSERT_EQ(got.size(), expected.size());
      double size = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(torch::allclose(got[i], expected[i], 1e-3, 1e-5))
            << "meta-parameter " << i << ": largest difference "
            << (got[i] - expected[i]).abs().max().item<double>();
        size += expected[i].abs().sum().item<double>();
      }
      EXPECT_GT(size, 1e-4);  // a real gradient, not two zeros agreeing
      // Adaptation of a new task on the device, too.
      const Tensor cpu_out = on_cpu.adapted_outputs(tasks[0].support, tasks[0].query, 3);
      const Tensor device_out =
          on_device.adapted_outputs(device_tasks[0].support, device_tasks[0].query, 3);
      EXPECT_EQ(device_out.device(), device);
      EXPECT_TRUE(torch::allclose(device_out.cpu(), cpu_out, 1e-3, 1e-4));
    }
}

TEST(CudaBatchedMatmul, FallsBackToBmmOnTheDeviceAndAgreesToTheSecondDerivative) {
  REQUIRE_TEST_DEVICE(device);
  torch::manual_seed(2);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::to_string(ta) + std::to_string(tb));
      const Tensor a =
          torch::randn(ta ? std::vector<std::int64_t>{3, 5, 4} : std::vector<std::int64_t>{3, 4, 5},
                       torch::kFloat64);
      const Tensor b =
          torch::randn(tb ? std::vector<std::int64_t>{3, 6, 5} : std::vector<std::int64_t>{3, 5, 6},
                       torch::kFloat64);
      auto second = [&](const torch::Device& on) {
        Tensor x = a.to(on).requires_grad_(), y = b.to(on).requires_grad_();
        const Tensor c = ml::models::batched_matmul(x, y, ta, tb);
        EXPECT_EQ(c.device(), on);
        const Tensor gx = torch::autograd::grad({c.pow(2).sum()}, {x}, {}, true, true)[0];
        const Tensor hy = torch::autograd::grad({gx.sum()}, {y})[0];
        return std::make_pair(c.detach().cpu(), hy.cpu());
      };
      const auto [c_cpu, h_cpu] = second(torch::kCPU);
      const auto [c_dev, h_dev] = second(device);
      EXPECT_TRUE(torch::allclose(c_dev, c_cpu, 1e-10, 1e-12));
      EXPECT_TRUE(torch::allclose(h_dev, h_cpu, 1e-10, 1e-12));
    }
}

TEST(CudaTransfer, BatchesReachTheDeviceUnchanged) {
  REQUIRE_TEST_DEVICE(device);
  torch::manual_seed(4);
  const Batch features = feature_batch(7, 5, {9}, LabelKind::kBinary, 1);
  const Batch texts = token_batch(7, 6, 20, 3);
  for (const Batch* b : {&features, &texts}) {
    const Batch moved = b->to(device);
    const std::vector<std::pair<Tensor, Tensor>> pairs = {{b->dense, moved.dense},
                                                          {b->ids, moved.ids},
                                                          {b->target, moved.target},
                                                          {b->tokens, moved.tokens},
                                                          {b->mask, moved.mask}};
    for (const auto& [from, to] : pairs) {
      ASSERT_EQ(from.defined(), to.defined());
      if (!from.defined()) continue;
      EXPECT_EQ(to.device(), device);
      EXPECT_EQ(to.scalar_type(), from.scalar_type());
      // The host side is the caller's tensor, not a pinned copy of it.
      EXPECT_TRUE(from.device().is_cpu());
      EXPECT_TRUE(torch::equal(to.cpu(), from));
    }
  }
}

// train -> eval -> adapt --all-new -> predict on a small synthetic shop with --device cuda; the
// adapted model, written on the GPU, scores the same rows on the CPU.
TEST(CudaEndToEnd, TrainEvalAdaptPredictOnTheDeviceAndTheCheckpointReadsOnTheCpu) {
  REQUIRE_TEST_DEVICE(device);
  const std::string on = device.is_cuda() ? "cuda" : "cpu";
  ml::testing::TempDir dir;
  const ml::config::Config config = ml::testing::synthetic_shop(dir);
  ml::config::Json j;
  to_json(j, config);
  ml::testing::write_file(dir.file("shop.json"), j.dump(2));
  auto q = ml::testing::shell_quote;
  const std::string run = q(config.run.dir);
  const auto train =
      ml::testing::run_cli("train --config " + q(dir.file("shop.json")) + " --device " + on);
  ASSERT_EQ(train.code, 0) << train.err;
  const auto eval = ml::testing::run_cli("eval --checkpoint " + run + " --no-pretrain --shots 2 " +
                                         "--steps 0,1 --episodes 2 --json --device " + on);
  ASSERT_EQ(eval.code, 0) << eval.err;
  const auto adapt =
      ml::testing::run_cli("adapt --checkpoint " + run + " --all-new --json --device " + on);
  ASSERT_EQ(adapt.code, 0) << adapt.err;
  const auto adapted = ml::config::Json::parse(adapt.out)["tasks"];
  ASSERT_FALSE(adapted.empty()) << adapt.out;
  const std::string model = adapted[0]["checkpoint"];
  const std::string rows = q(config.data.files.front());
  const auto on_device =
      ml::testing::run_cli("predict --checkpoint " + q(model) + " --input " + rows + " --device " +
                           on + " --output " + q(dir.file("device.csv")));
  ASSERT_EQ(on_device.code, 0) << on_device.err;
  const auto on_cpu = ml::testing::run_cli("predict --checkpoint " + q(model) + " --input " + rows +
                                           " --device cpu --output " + q(dir.file("cpu.csv")));
  ASSERT_EQ(on_cpu.code, 0) << on_cpu.err;
  // Same rows, same order; the scores (last column) within float32 rounding.
  std::istringstream device_lines(ml::testing::slurp(dir.file("device.csv")));
  std::istringstream cpu_lines(ml::testing::slurp(dir.file("cpu.csv")));
  std::string device_line, cpu_line;
  int compared = 0;
  std::getline(device_lines, device_line);
  std::getline(cpu_lines, cpu_line);
  EXPECT_EQ(device_line, cpu_line);  // the header
  while (std::getline(cpu_lines, cpu_line)) {
    ASSERT_TRUE(static_cast<bool>(std::getline(device_lines, device_line)));
    const auto cut = [](const std::string& line) { return line.rfind(','); };
    EXPECT_EQ(device_line.substr(0, cut(device_line)), cpu_line.substr(0, cut(cpu_line)));
    EXPECT_NEAR(std::stod(device_line.substr(cut(device_line) + 1)),
                std::stod(cpu_line.substr(cut(cpu_line) + 1)), 1e-4);
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

}  // namespace
