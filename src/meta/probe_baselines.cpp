// Linear probe and nearest class mean: see probe_baselines.hpp.
#include "meta/probe_baselines.hpp"

#include "models/model.hpp"

namespace ml::meta {

using torch::Tensor;

namespace {

// Support statistics standardise both sets the same way; a constant dimension keeps scale 1.
std::pair<Tensor, Tensor> standardise(const Tensor& support, const Tensor& query) {
  const Tensor mean = support.mean(0, /*keepdim=*/true);
  Tensor sd = support.std(0, /*unbiased=*/false, /*keepdim=*/true);
  sd = torch::where(sd > 1e-6, sd, torch::ones_like(sd));
  return {(support - mean) / sd, (query - mean) / sd};
}

}  // namespace

Tensor linear_probe_outputs(const Tensor& support_rep, const Tensor& support_target,
                            const Tensor& query_rep, tasks::LabelKind kind, std::int64_t classes,
                            double l2) {
  torch::NoGradGuard outer_no_grad;
  auto [xs, xq] =
      standardise(support_rep.detach().to(torch::kFloat64), query_rep.detach().to(torch::kFloat64));
  const std::int64_t width = xs.size(1);
  if (kind == tasks::LabelKind::kRegression) {
    // Ridge in closed form on centred targets: (X'X + n*l2 I) w = X'(y - mean y).
    const Tensor y = support_target.to(torch::kFloat64);
    const Tensor y_mean = y.mean();
    const double n = static_cast<double>(xs.size(0));
    const Tensor gram = xs.t().matmul(xs) + n * l2 * torch::eye(width, xs.options());
    const Tensor w = torch::linalg::solve(gram, xs.t().matmul(y - y_mean).unsqueeze(1), true);
    return (xq.matmul(w) + y_mean).to(support_rep.dtype());
  }
  const std::int64_t outputs = kind == tasks::LabelKind::kMulticlass ? classes : 1;
  Tensor weight = torch::zeros({width, outputs}, xs.options()).requires_grad_(true);
  Tensor bias = torch::zeros({outputs}, xs.options()).requires_grad_(true);
  torch::optim::LBFGS optimiser(
      std::vector<Tensor>{weight, bias},
      torch::optim::LBFGSOptions(1.0).max_iter(100).line_search_fn("strong_wolfe"));
  const Tensor target = kind == tasks::LabelKind::kMulticlass ? support_target.to(torch::kInt64)
                                                              : support_target.to(torch::kFloat64);
  auto closure = [&]() -> Tensor {
    torch::AutoGradMode enable(true);
    optimiser.zero_grad();
    Tensor loss = models::task_loss(torch::addmm(bias, xs, weight), target, kind) +
                  0.5 * l2 * weight.pow(2).sum();
    loss.backward();
    return loss;
  };
  {
    torch::AutoGradMode enable(true);
    optimiser.step(closure);
  }
  return torch::addmm(bias, xq, weight).detach().to(support_rep.dtype());
}

Tensor nearest_class_mean_outputs(const Tensor& support_rep, const Tensor& support_target,
                                  const Tensor& query_rep, std::int64_t classes) {
  torch::NoGradGuard no_grad;
  const Tensor zs = torch::nn::functional::normalize(
      support_rep, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const Tensor zq = torch::nn::functional::normalize(
      query_rep, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const Tensor onehot = torch::one_hot(support_target.to(torch::kInt64), classes).to(zs.dtype());
  const Tensor counts = onehot.sum(0).clamp_min(1).unsqueeze(1);
  const Tensor means = onehot.t().matmul(zs) / counts;            // [C, h]
  return -(zq.unsqueeze(1) - means.unsqueeze(0)).pow(2).sum(-1);  // [n, C]
}

}  // namespace ml::meta
