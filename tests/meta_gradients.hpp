// Test helper shared by the meta-learning tests: the meta-gradients a learner left in .grad().
#pragma once

#include <torch/torch.h>

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

}  // namespace ml::testing
