// Test helpers shared by the meta-learning tests: the meta-gradients a learner left in .grad(),
// and a meta-gradient checked against central finite differences.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "meta/meta_learner.hpp"

namespace ml::testing {

// The dense meta-gradients accumulate_meta_gradient left in .grad() (zeros where none), cloned,
// and .grad() cleared for the next call.
inline std::vector<torch::Tensor> take_gradients(meta::MetaLearner& learner) {
  std::vector<torch::Tensor> g;
  for (const auto& p : learner.meta_parameters()) {
    g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  return g;
}

// Detached copies of `tensors` (a model's weights to perturb).
inline std::vector<torch::Tensor> detached_clones(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.detach().clone());
  return out;
}

// Expects `analytic` (the gradient of `loss` at `base`, float64; undefined: zero) to equal the
// central differences of `loss` (step 1e-6) within 1e-7 + 1e-5 |numeric|, at `entries` evenly
// spaced entries of every tensor. Returns what it compared: {tensor index, numeric value} per
// entry, so a caller can check the values were not all zeros agreeing.
inline std::vector<std::pair<std::size_t, double>> expect_finite_differences(
    const std::vector<torch::Tensor>& base,
    const std::function<double(const std::vector<torch::Tensor>&)>& loss,
    const std::vector<torch::Tensor>& analytic, const std::vector<std::string>& names,
    std::int64_t entries) {
  const double eps = 1e-6;
  std::vector<std::pair<std::size_t, double>> compared;
  for (std::size_t i = 0; i < base.size(); ++i)
    for (std::int64_t j = 0; j < base[i].numel();
         j += std::max<std::int64_t>(1, base[i].numel() / entries)) {
      auto plus = base, minus = base;
      plus[i] = base[i].clone();
      minus[i] = base[i].clone();
      plus[i].view(-1)[j] += eps;
      minus[i].view(-1)[j] -= eps;
      const double numeric = (loss(plus) - loss(minus)) / (2 * eps);
      const double value = analytic[i].defined() ? analytic[i].reshape(-1)[j].item<double>() : 0.0;
      EXPECT_NEAR(value, numeric, 1e-7 + 1e-5 * std::abs(numeric)) << names[i] << "[" << j << "]";
      compared.emplace_back(i, numeric);
    }
  return compared;
}

}  // namespace ml::testing
