// Tests of the hand-written dense forward/backward (models/dense_backprop.hpp) against
// forward_stacked + task_losses + autograd, and of the BLAS kernel choice made before OpenBLAS
// loads (runtime/blas_core.hpp). The meta-gradients of fomaml and Reptile that use it are held
// to the per-task reference in test_meta.cpp (StackedInnerLoop.*).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "meta/stacked_inner_loop.hpp"
#include "models/dense_backprop.hpp"
#include "models/dense_second_order.hpp"
#include "models/model.hpp"
#include "models/task_stack.hpp"
#include "runtime/blas_core.hpp"
#include "test_support.hpp"

// The test executable (gtest's main) chooses OpenBLAS's kernels as metalearn's main does, from a
// static initialiser: shared libraries, OpenBLAS among them, are initialised before it runs.
namespace {
const bool user_chose_blas_core = std::getenv("OPENBLAS_CORETYPE") != nullptr;
const bool blas_core_chosen = (ml::runtime::choose_blas_core(), true);
}  // namespace

extern "C" char* openblas_get_corename(void) __attribute__((weak));

namespace {

using ml::models::GradientUse;
using ml::models::StackedBatch;
using ml::tasks::LabelKind;
using torch::Tensor;

struct Case {
  LabelKind kind;
  std::int64_t outputs;
  bool padded;
  torch::Dtype dtype;
};

// Three tasks of 4..6 rows (padded) or 5 each, 4 dense features.
StackedBatch random_stack(const Case& c) {
  std::vector<ml::models::Batch> parts;
  for (std::int64_t t = 0; t < 3; ++t) {
    const std::int64_t n = c.padded ? 4 + t : 5;
    ml::models::Batch b;
    b.dense = torch::randn({n, 4}, c.dtype);
    b.ids = torch::zeros({n, 0}, torch::kInt64);
    switch (c.kind) {
      case LabelKind::kBinary:
        b.target = (torch::rand({n}, c.dtype) > 0.5).to(c.dtype);
        break;
      case LabelKind::kRegression:
        b.target = torch::randn({n}, c.dtype);
        break;
      case LabelKind::kMulticlass:
        b.target = torch::randint(c.outputs, {n}, torch::kInt64);
        break;
    }
    parts.push_back(b);
  }
  return ml::models::stack_tasks(parts);
}

ml::models::FunctionalModel model_for(const Case& c) {
  ml::models::ModelShape shape;
  shape.dense_dim = 4;
  shape.hidden = {6, 5};
  shape.outputs = c.outputs;
  ml::models::FunctionalModel model(shape);
  model->to(c.dtype);
  return model;
}

// Per-task copies of every parameter, perturbed per task so that tasks differ.
std::vector<Tensor> per_task_copies(const ml::models::FunctionalModelImpl& model) {
  std::vector<Tensor> out;
  for (const Tensor& p : model.params()) {
    std::vector<std::int64_t> shape = p.sizes().vec();
    shape.insert(shape.begin(), 3);
    out.push_back(
        (p.detach().unsqueeze(0).expand(shape) + 0.1 * torch::randn(shape, p.options())).clone());
  }
  return out;
}

std::string name(const Case& c) {
  const char* kinds[] = {"binary", "regression", "multiclass"};
  return kinds[static_cast<int>(c.kind)] + std::string(c.padded ? " padded " : " ") +
         (c.dtype == torch::kFloat64 ? "float64" : "float32");
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {LabelKind::kBinary, 1, false, torch::kFloat64},
      {LabelKind::kBinary, 1, true, torch::kFloat64},
      {LabelKind::kRegression, 1, true, torch::kFloat64},
      {LabelKind::kMulticlass, 3, true, torch::kFloat64},
      {LabelKind::kMulticlass, 3, false, torch::kFloat32},
      {LabelKind::kBinary, 1, true, torch::kFloat32},
  };
  return all;
}

double tolerance(const Case& c) {
  return c.dtype == torch::kFloat64 ? 1e-11 : 2e-5;
}

}  // namespace

TEST(DenseBackprop, LossAndSummedGradientsEqualAutogradsOnPerTaskAndSharedLayers) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    torch::manual_seed(3);
    auto model = model_for(c);
    const StackedBatch batch = random_stack(c);
    // The tower shared, the head per task: both kinds of layer in one pass.
    std::vector<Tensor> p = per_task_copies(*model);
    for (std::size_t i = 0; i + 2 < p.size(); ++i) p[i] = model->params()[i].detach().clone();
    for (Tensor& t : p) t.requires_grad_(true);

    Tensor losses = ml::models::task_losses(model->forward_stacked(batch, p), batch, c.kind);
    const double scale = 0.25;
    auto expected = torch::autograd::grad({losses.sum() * scale}, p);

    std::vector<Tensor> sums;
    const auto loss = ml::meta::stacked_gradient_sum(*model, batch, p, c.kind, scale, sums);
    ASSERT_TRUE(loss.has_value());
    EXPECT_NEAR(*loss, losses.sum().item<double>(), tolerance(c) * 10);
    ASSERT_EQ(sums.size(), p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      const Tensor want = p[i].dim() > model->params()[i].dim() ? expected[i].sum(0) : expected[i];
      EXPECT_EQ(sums[i].sizes(), model->params()[i].sizes());
      EXPECT_TRUE(torch::allclose(sums[i], want, 1e-4, tolerance(c)))
          << "parameter " << i << ": largest difference "
          << (sums[i] - want).abs().max().item<double>();
      EXPECT_GT(want.abs().sum().item<double>(), 0.0);
    }
  }
}

TEST(DenseBackprop, SgdStepsEqualAutogradsStepsAndLeaveUnmaskedLayersAlone) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    torch::manual_seed(5);
    auto model = model_for(c);
    const StackedBatch batch = random_stack(c);
    const std::vector<Tensor> start = per_task_copies(*model);
    // Adapt the last tower layer and the head; the first tower layer stays put (kIgnore).
    std::vector<bool> mask(start.size(), true);
    mask[0] = mask[1] = false;
    auto fresh = [&] {
      std::vector<Tensor> copy;
      for (const Tensor& t : start) copy.push_back(t.clone().requires_grad_(true));
      return copy;
    };
    // create_graph takes autograd's path; without it the steps are taken by hand.
    const auto by_autograd = ml::meta::stacked_inner_loop(*model, fresh(), mask, batch, c.kind, 3,
                                                          0.2, /*create_graph=*/true, nullptr);
    const auto by_hand = ml::meta::stacked_inner_loop(*model, fresh(), mask, batch, c.kind, 3, 0.2,
                                                      /*create_graph=*/false, nullptr);
    for (std::size_t i = 0; i < start.size(); ++i) {
      EXPECT_TRUE(torch::allclose(by_hand[i].detach(), by_autograd[i].detach(), 1e-4, tolerance(c)))
          << "parameter " << i << ": largest difference "
          << (by_hand[i] - by_autograd[i]).abs().max().item<double>();
      EXPECT_EQ(torch::equal(by_hand[i].detach(), start[i]), !mask[i]) << "parameter " << i;
    }
  }
}

TEST(DenseSecondOrder, MamlMetaGradientEqualsAutogradsThroughTheInnerSteps) {
  // Which tensors adapt: all; the head only (ANIL); the middle layer only, so the R-operator
  // starts above a layer that does not move and must still reach the first layer's gradient;
  // none (the meta-gradient is the query gradient at the start).
  const std::vector<std::vector<bool>> masks = {
      {true, true, true, true, true, true},
      {false, false, false, false, true, true},
      {false, false, true, false, false, false},
      {false, false, false, false, false, false},
  };
  for (const Case& c : cases()) {
    for (const auto& mask : masks) {
      for (int steps : {0, 1, 3}) {
        SCOPED_TRACE(name(c) + ", " + std::to_string(steps) + " steps, mask " +
                     std::to_string(&mask - masks.data()));
        torch::manual_seed(7);
        auto model = model_for(c);
        const StackedBatch support = random_stack(c), query = random_stack(c);
        std::vector<Tensor> leaves;
        for (const Tensor& p : model->params())
          leaves.push_back(p.detach().clone().requires_grad_());
        const double lr = 0.3, scale = 0.5;
        // Autograd's second order: the steps kept differentiable, then the query loss's gradient
        // with respect to the shared starting weights.
        auto fast = ml::meta::per_task_parameters(*model, leaves, mask, 3, {}, true);
        const bool adapts = std::find(mask.begin(), mask.end(), true) != mask.end();
        if (adapts)  // (autograd refuses a gradient with respect to nothing)
          fast = ml::meta::stacked_inner_loop(*model, fast, mask, support, c.kind, steps, lr,
                                              /*create_graph=*/true, nullptr);
        Tensor losses = ml::models::task_losses(model->forward_stacked(query, fast), query, c.kind);
        auto expected = torch::autograd::grad({losses.sum() * scale}, leaves, {}, false, false,
                                              /*allow_unused=*/true);

        std::vector<Tensor> sums;
        const auto loss = ml::meta::stacked_maml_gradient_sum(*model, support, query, leaves, mask,
                                                              c.kind, steps, lr, scale, sums);
        ASSERT_TRUE(loss.has_value());
        EXPECT_NEAR(*loss, losses.sum().item<double>(), tolerance(c) * 10);
        ASSERT_EQ(sums.size(), leaves.size());
        for (std::size_t i = 0; i < leaves.size(); ++i) {
          const Tensor want = expected[i].defined() ? expected[i] : torch::zeros_like(leaves[i]);
          EXPECT_TRUE(torch::allclose(sums[i], want, 1e-4, tolerance(c) * 10))
              << "parameter " << i << ": largest difference "
              << (sums[i] - want).abs().max().item<double>();
          EXPECT_GT(want.abs().sum().item<double>(), 0.0) << "parameter " << i;
        }
      }
    }
  }
}

TEST(DenseSecondOrder, MetaSgdMetaGradientsOfWeightsAndRatesEqualAutograds) {
  const std::vector<std::vector<bool>> masks = {
      {true, true, true, true, true, true},
      {false, false, true, true, true, false},
  };
  for (const Case& c : cases()) {
    for (const auto& mask : masks) {
      SCOPED_TRACE(name(c) + ", mask " + std::to_string(&mask - masks.data()));
      torch::manual_seed(9);
      auto model = model_for(c);
      const StackedBatch support = random_stack(c), query = random_stack(c);
      std::vector<Tensor> leaves, rates;
      for (const Tensor& p : model->params()) {
        leaves.push_back(p.detach().clone().requires_grad_());
        // Rates that differ per element, around 0.2.
        rates.push_back((0.2 + 0.1 * torch::rand(p.sizes(), p.options())).requires_grad_());
      }
      const int steps = 3;
      const double scale = 0.5;
      auto fast = ml::meta::per_task_parameters(*model, leaves, mask, 3, {}, true);
      const auto task_rates = ml::meta::per_task_parameters(*model, rates, mask, 3, {}, true);
      fast = ml::meta::stacked_inner_loop(*model, fast, mask, support, c.kind, steps, 0.0,
                                          /*create_graph=*/true, &task_rates);
      Tensor losses = ml::models::task_losses(model->forward_stacked(query, fast), query, c.kind);
      std::vector<Tensor> both = leaves;
      both.insert(both.end(), rates.begin(), rates.end());
      const auto expected = torch::autograd::grad({losses.sum() * scale}, both, {}, false, false,
                                                  /*allow_unused=*/true);

      std::vector<Tensor> sums, rate_sums;
      const auto loss =
          ml::meta::stacked_maml_gradient_sum(*model, support, query, leaves, mask, c.kind, steps,
                                              0.0, scale, sums, &rates, &rate_sums);
      ASSERT_TRUE(loss.has_value());
      EXPECT_NEAR(*loss, losses.sum().item<double>(), tolerance(c) * 10);
      for (std::size_t i = 0; i < both.size(); ++i) {
        const bool rate = i >= leaves.size();
        const std::size_t k = rate ? i - leaves.size() : i;
        const Tensor& got = rate ? rate_sums[k] : sums[k];
        ASSERT_EQ(got.defined(), !rate || mask[k]) << "tensor " << i;
        if (!got.defined()) continue;
        const Tensor want = expected[i].defined() ? expected[i] : torch::zeros_like(got);
        EXPECT_TRUE(torch::allclose(got, want, 1e-4, tolerance(c) * 10))
            << (rate ? "rate " : "parameter ") << k << ": largest difference "
            << (got - want).abs().max().item<double>();
        EXPECT_GT(want.abs().sum().item<double>(), 0.0) << "tensor " << i;
      }
    }
  }
}

TEST(DenseBackprop, RefusesWhatItCannotRun) {
  Case c{LabelKind::kBinary, 1, false, torch::kFloat32};
  auto model = model_for(c);
  const StackedBatch batch = random_stack(c);
  std::vector<Tensor> layers;
  for (const Tensor& p : model->params()) layers.push_back(p.detach());
  EXPECT_TRUE(ml::models::dense_pass_supports(batch.dense, layers));
  EXPECT_FALSE(ml::models::dense_pass_supports(batch.dense.to(torch::kFloat64), layers));
  EXPECT_FALSE(ml::models::dense_pass_supports(batch.dense.transpose(0, 1), layers));
  ml::models::DensePassPlan plan;
  plan.use.assign(layers.size(), GradientUse::kSgdStep);  // shared layers cannot take a step
  EXPECT_THROW(ml::models::dense_pass(batch.dense, layers, batch, c.kind, plan),
               std::invalid_argument);
}

TEST(DenseBackprop, TaskMoveSumIsTheScaledSumOfDifferencesAndRefusesOtherLayouts) {
  // Reptile's meta-gradient of a dense parameter: scale · Σ_t (start - ends[t]).
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const Tensor start = torch::randn({37, 5}, dtype), ends = torch::randn({6, 37, 5}, dtype);
    const Tensor expected = ((start.unsqueeze(0) - ends) * 0.25).sum(0);
    const Tensor got = ml::models::task_move_sum(start, ends, 0.25);
    EXPECT_EQ(got.sizes(), start.sizes());
    EXPECT_EQ(got.scalar_type(), dtype);
    EXPECT_TRUE(torch::allclose(got, expected, dtype == torch::kFloat32 ? 1e-5 : 1e-12, 1e-6));
  }
  const Tensor start = torch::randn({4, 3}), ends = torch::randn({2, 4, 3});
  EXPECT_FALSE(ml::models::task_move_sum_supports(start, ends.transpose(1, 2)));
  EXPECT_FALSE(ml::models::task_move_sum_supports(start, ends.to(torch::kFloat64)));
  EXPECT_FALSE(ml::models::task_move_sum_supports(start, torch::randn({2, 3, 4})));
  EXPECT_THROW(ml::models::task_move_sum(start.t(), ends, 1.0), std::invalid_argument);
}

TEST(BlasCore, OpenBlasNeverRunsItsSse3FallbackOnACpuWithAvx2) {
  ASSERT_TRUE(blas_core_chosen);
  if (openblas_get_corename == nullptr) GTEST_SKIP() << "the build's BLAS is not OpenBLAS";
  if (user_chose_blas_core) GTEST_SKIP() << "OPENBLAS_CORETYPE set by the user";
  if (ml::runtime::blas_core_for_this_cpu() == nullptr)
    GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512";
  const std::string running = openblas_get_corename();
  EXPECT_NE(running, "Prescott") << ml::runtime::blas_core_description();
  EXPECT_NE(ml::runtime::blas_core_description().find(running), std::string::npos);
  // The kernels work: a product against a hand-computed sum.
  const torch::Tensor a = torch::rand({64, 48}), b = torch::rand({48, 32});
  const torch::Tensor by_loop = (a.unsqueeze(2) * b.unsqueeze(0)).sum(1);
  EXPECT_TRUE(torch::allclose(a.mm(b), by_loop, 1e-4, 1e-5));
}
