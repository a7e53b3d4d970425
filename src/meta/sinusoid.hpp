// The MAML paper's sinusoid regression (Finn et al. 2017, section 5.1) as a self-check of the
// meta-learning core: amplitude in [0.1, 5], phase in [0, pi], x in [-5, 5], a 40-40 ReLU net,
// K support points. Meta-learned initialisations adapt to a new sinusoid in a few steps; a
// jointly pretrained one (which learns roughly the mean function, 0) cannot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/choices.hpp"

namespace ml::meta {

struct SinusoidOptions {
  config::Algorithm algorithm = config::Algorithm::kMaml;
  int iterations = 2000;
  int meta_batch = 10;
  int shots = 10;       // K support points per task (the query has as many in training)
  int train_steps = 1;  // inner steps during meta-training
  double inner_lr = 0.01;
  double outer_lr = 1e-3;
  int eval_tasks = 100;
  int eval_query = 100;
  int eval_steps = 10;
  std::uint64_t seed = 1;
};

struct SinusoidResult {
  std::vector<double> query_mse;  // mean over eval tasks after 0..eval_steps adaptation steps
  double seconds = 0;
};

SinusoidResult run_sinusoid(const SinusoidOptions& options);

}  // namespace ml::meta
