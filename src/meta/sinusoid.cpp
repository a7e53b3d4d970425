// Sinusoid regression self-check: see sinusoid.hpp.
#include "meta/sinusoid.hpp"

#include <chrono>
#include <cmath>

#include "meta/meta_learner.hpp"
#include "util/rng.hpp"

namespace ml::meta {

namespace {

struct Sinusoid {
  double amplitude, phase;
};

Sinusoid draw_task(Rng& rng) {
  return {0.1 + 4.9 * uniform01(rng), M_PI * uniform01(rng)};
}

models::Batch draw_points(const Sinusoid& task, int n, Rng& rng) {
  models::Batch b;
  b.dense = torch::empty({n, 1});
  b.target = torch::empty({n});
  b.ids = torch::zeros({n, 0}, torch::kInt64);
  auto x = b.dense.accessor<float, 2>();
  auto y = b.target.accessor<float, 1>();
  for (int i = 0; i < n; ++i) {
    double v = -5.0 + 10.0 * uniform01(rng);
    x[i][0] = static_cast<float>(v);
    y[i] = static_cast<float>(task.amplitude * std::sin(v - task.phase));
  }
  return b;
}

}  // namespace

SinusoidResult run_sinusoid(const SinusoidOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  torch::manual_seed(o.seed);
  models::ModelShape shape;
  shape.dense_dim = 1;
  shape.hidden = {40, 40};
  config::MetaConfig meta;
  meta.algorithm = o.algorithm;
  meta.inner_steps = o.train_steps;
  meta.inner_lr = o.inner_lr;
  meta.inner_params = config::InnerParams::kAll;
  MetaLearner learner(meta, tasks::LabelKind::kRegression, models::FunctionalModel(shape));
  torch::optim::Adam optimizer(learner.meta_parameters(), torch::optim::AdamOptions(o.outer_lr));
  Rng rng(derive_seed(o.seed, 0x73696eULL));
  if (learner.trains()) {
    for (int it = 0; it < o.iterations; ++it) {
      std::vector<TaskBatch> batch;
      for (int t = 0; t < o.meta_batch; ++t) {
        Sinusoid task = draw_task(rng);
        batch.push_back({draw_points(task, o.shots, rng), draw_points(task, o.shots, rng)});
      }
      optimizer.zero_grad();
      learner.accumulate_meta_gradient(batch);
      optimizer.step();
    }
  }
  SinusoidResult result;
  result.query_mse.assign(static_cast<std::size_t>(o.eval_steps) + 1, 0.0);
  Rng eval_rng(derive_seed(o.seed, 0x6576616cULL));
  for (int t = 0; t < o.eval_tasks; ++t) {
    Sinusoid task = draw_task(eval_rng);
    models::Batch support = draw_points(task, o.shots, eval_rng);
    models::Batch query = draw_points(task, o.eval_query, eval_rng);
    for (int s = 0; s <= o.eval_steps; ++s) {
      torch::Tensor out = learner.adapted_outputs(support, query, s);
      result.query_mse[static_cast<std::size_t>(s)] +=
          torch::mse_loss(out.squeeze(1), query.target).item<double>() / o.eval_tasks;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace ml::meta
