// Second-order MAML's meta-gradient through dense layers, by hand: see dense_second_order.hpp.
#include "models/dense_second_order.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "models/dense_backprop.hpp"
#include "models/dense_kernels.hpp"

namespace ml::models {
namespace {

// Meta-SGD at step s, for one tensor of `size` elements: the direction u = λ ⊙ v_{s+1}, and the
// rates' meta-gradient, scale · (-g_s ⊙ v_{s+1}), added to `rate_sum`.
template <typename S>
void rates_step(const S* v, const S* rate, const S* g, std::int64_t size, S scale, S* u,
                S* rate_sum) {
  for (std::int64_t k = 0; k < size; ++k) {
    u[k] = rate[k] * v[k];
    rate_sum[k] -= scale * g[k] * v[k];
  }
}

template <typename S>
double run(const torch::Tensor& support_x, const StackedBatch& support,
           const torch::Tensor& query_x, const StackedBatch& query,
           const std::vector<torch::Tensor>& layers, tasks::LabelKind kind, SecondOrderPlan& plan) {
  const std::int64_t T = support_x.size(0);
  const int ns = static_cast<int>(support_x.size(1)), nq = static_cast<int>(query_x.size(1));
  const std::size_t L = layers.size() / 2;
  const S one = 1, zero = 0;
  // Meta-SGD: per-element rates λ; the step is θ - λ ⊙ g and the direction of each
  // Hessian-vector product λ ⊙ v, so the products fold into v with -1 where MAML's use -α.
  const bool per_element = !plan.rates.empty();
  const S fold = per_element ? -one : static_cast<S>(-plan.lr);
  std::vector<int> width(L + 1);
  width[0] = static_cast<int>(support_x.size(2));
  std::vector<const S*> shared_w(L), shared_b(L);
  std::vector<std::int64_t> w_size(L);
  std::vector<bool> adapt_w(L), adapt_b(L);
  std::size_t lowest_adapted = L;
  for (std::size_t j = 0; j < L; ++j) {
    width[j + 1] = static_cast<int>(layers[2 * j + 1].size(0));
    shared_w[j] = layers[2 * j].data_ptr<S>();
    shared_b[j] = layers[2 * j + 1].data_ptr<S>();
    w_size[j] = static_cast<std::int64_t>(width[j]) * width[j + 1];
    adapt_w[j] = plan.adapt[2 * j];
    adapt_b[j] = plan.adapt[2 * j + 1];
    if (adapt_w[j] || adapt_b[j]) lowest_adapted = std::min(lowest_adapted, j);
  }
  const int outputs = width[L];
  // With nothing adapting, θ_K = θ_0 and every Hessian-vector product is along zero.
  const int K = lowest_adapted == L ? 0 : plan.steps;

  // Every step's weights of the tensors that adapt (slot s holds θ_s; K + 1 slots); the others
  // are read from `layers` at every step.
  std::vector<std::vector<S>> w_steps(L), b_steps(L);
  for (std::size_t j = 0; j < L; ++j) {
    if (adapt_w[j]) w_steps[j].resize(static_cast<std::size_t>((K + 1) * w_size[j]));
    if (adapt_b[j]) b_steps[j].resize(static_cast<std::size_t>((K + 1) * width[j + 1]));
  }
  // Meta-SGD keeps every step's gradients g_s (the rates' meta-gradient is -Σ_s g_s ⊙ v_{s+1}),
  // and the direction λ ⊙ v in u.
  std::vector<std::vector<S>> gw_steps(L), gb_steps(L), u_w(L), u_b(L);
  std::vector<const S*> rate_w(L), rate_b(L);
  std::vector<S*> rate_sum_w(L), rate_sum_b(L);
  if (per_element) {
    for (std::size_t j = 0; j < L; ++j) {
      if (adapt_w[j]) {
        gw_steps[j].resize(static_cast<std::size_t>(K * w_size[j]));
        u_w[j].resize(static_cast<std::size_t>(w_size[j]));
        rate_w[j] = plan.rates[2 * j].data_ptr<S>();
        rate_sum_w[j] = plan.rate_sums[2 * j].data_ptr<S>();
      }
      if (adapt_b[j]) {
        gb_steps[j].resize(static_cast<std::size_t>(K * width[j + 1]));
        u_b[j].resize(static_cast<std::size_t>(width[j + 1]));
        rate_b[j] = plan.rates[2 * j + 1].data_ptr<S>();
        rate_sum_b[j] = plan.rate_sums[2 * j + 1].data_ptr<S>();
      }
    }
  }
  auto w_at = [&](std::size_t j, int s) -> S* {
    return adapt_w[j] ? w_steps[j].data() + s * w_size[j] : const_cast<S*>(shared_w[j]);
  };
  auto b_at = [&](std::size_t j, int s) -> S* {
    return adapt_b[j] ? b_steps[j].data() + s * width[j + 1] : const_cast<S*>(shared_b[j]);
  };

  // Per support step s: act[s][j] layer j's output (after its ReLU; the last layer's outputs are
  // replaced by the loss gradient there), delta[s][j] the loss gradient at layer j's output
  // (j < L - 1; the last layer's is act[s][L - 1]), curvature[s] the loss's at the outputs.
  std::vector<std::vector<std::vector<S>>> act(static_cast<std::size_t>(K)),
      delta(static_cast<std::size_t>(K));
  std::vector<dense::LossCurvature<S>> curvature(static_cast<std::size_t>(K));
  for (int s = 0; s < K; ++s) {
    act[s].resize(L);
    delta[s].resize(L);
    for (std::size_t j = 0; j < L; ++j) {
      if (s == 0 || j >= lowest_adapted)
        act[s][j].resize(static_cast<std::size_t>(ns * width[j + 1]));
      if (j + 1 < L && j >= lowest_adapted)
        delta[s][j].resize(static_cast<std::size_t>(ns * width[j + 1]));
    }
  }
  // Layers below the lowest that adapts compute the same outputs at every step: step 0's serve.
  auto act_at = [&](int s, std::size_t j) -> S* {
    return j < lowest_adapted ? act[0][j].data() : act[s][j].data();
  };
  auto delta_at = [&](int s, std::size_t j) -> S* {
    return j + 1 == L ? act[s][j].data() : delta[s][j].data();
  };
  int widest = width[0];
  for (int w : width) widest = std::max(widest, w);
  // The query pass's activations and two gradient buffers; the R-operator's values r[j] at each
  // layer's output and two buffers for its backward; v, the meta-gradient being carried back.
  std::vector<std::vector<S>> query_act(L), r(L), v_w(L), v_b(L);
  for (std::size_t j = 0; j < L; ++j) {
    query_act[j].resize(static_cast<std::size_t>(nq * width[j + 1]));
    r[j].resize(static_cast<std::size_t>(ns * width[j + 1]));
    v_w[j].resize(static_cast<std::size_t>(w_size[j]));
    v_b[j].resize(static_cast<std::size_t>(width[j + 1]));
  }
  std::vector<S> grad_a(static_cast<std::size_t>(std::max(ns, nq) * widest)), grad_b(grad_a.size());
  std::vector<S*> sums(layers.size());
  for (std::size_t e = 0; e < layers.size(); ++e) sums[e] = plan.sums[e].data_ptr<S>();

  const dense::StackTargets<S> support_targets(support, kind, support_x.scalar_type()),
      query_targets(query, kind, query_x.scalar_type());
  std::vector<const S*> step_w(L), step_b(L);
  std::vector<S*> outs(L + 1);
  auto set_weights = [&](int s) {
    for (std::size_t j = 0; j < L; ++j) {
      step_w[j] = w_at(j, s);
      step_b[j] = b_at(j, s);
    }
  };
  const S scale = static_cast<S>(plan.scale);
  S* support_input_grad =
      plan.support_input_grad.defined() ? plan.support_input_grad.data_ptr<S>() : nullptr;
  S* query_input_grad =
      plan.query_input_grad.defined() ? plan.query_input_grad.data_ptr<S>() : nullptr;
  std::vector<bool> moves(L);
  // The direction of the Hessian-vector products: M v (MAML), λ ⊙ M v (Meta-SGD).
  auto dir_w = [&](std::size_t j) -> const S* {
    return per_element ? u_w[j].data() : v_w[j].data();
  };
  auto dir_b = [&](std::size_t j) -> const S* {
    return per_element ? u_b[j].data() : v_b[j].data();
  };
  double loss = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    const S* xs = support_x.data_ptr<S>() + t * ns * width[0];
    const S* xq = query_x.data_ptr<S>() + t * nq * width[0];
    for (std::size_t j = 0; j < L; ++j) {
      if (adapt_w[j]) std::copy(shared_w[j], shared_w[j] + w_size[j], w_at(j, 0));
      if (adapt_b[j]) std::copy(shared_b[j], shared_b[j] + width[j + 1], b_at(j, 0));
    }

    // The inner loop, keeping what the way back needs.
    for (int s = 0; s < K; ++s) {
      set_weights(s);
      for (std::size_t j = 0; j < L; ++j) outs[j + 1] = act_at(s, j);
      const std::size_t first = s == 0 ? 0 : lowest_adapted;
      dense::forward_rows(first == 0 ? xs : act_at(s, first - 1), ns, width, step_w, step_b, outs,
                          first);
      dense::loss_gradient(act[s][L - 1].data(), ns, outputs, kind, support_targets.target(t),
                           support_targets.classes(t), support_targets.weight(t),
                           support_targets.count(t), &curvature[s]);
      if (!per_element)  // the step is then folded into the gradient's product below
        for (std::size_t j = 0; j < L; ++j) {
          if (adapt_w[j]) std::copy(w_at(j, s), w_at(j, s) + w_size[j], w_at(j, s + 1));
          if (adapt_b[j]) std::copy(b_at(j, s), b_at(j, s) + width[j + 1], b_at(j, s + 1));
        }
      for (std::size_t j = L; j-- > lowest_adapted;) {
        const S* d = delta_at(s, j);
        const S* in = j == 0 ? xs : act_at(s, j - 1);
        if (j > lowest_adapted) {
          S* below = delta_at(s, j - 1);
          dense::input_product(w_at(j, s), d, ns, width[j], width[j + 1], zero, below);
          dense::relu_gradient(below, act_at(s, j - 1), static_cast<std::int64_t>(ns) * width[j]);
        }
        if (per_element) {
          if (adapt_w[j]) {
            S* g = gw_steps[j].data() + s * w_size[j];
            dense::weight_gradient(d, in, ns, width[j], width[j + 1], one, zero, g);
            const S *from = w_at(j, s), *rate = rate_w[j];
            S* to = w_at(j, s + 1);
            for (std::int64_t k = 0; k < w_size[j]; ++k) to[k] = from[k] - rate[k] * g[k];
          }
          if (adapt_b[j]) {
            S* g = gb_steps[j].data() + s * width[j + 1];
            std::fill(g, g + width[j + 1], zero);
            dense::bias_gradient(d, ns, width[j + 1], one, g);
            const S *from = b_at(j, s), *rate = rate_b[j];
            S* to = b_at(j, s + 1);
            for (int k = 0; k < width[j + 1]; ++k) to[k] = from[k] - rate[k] * g[k];
          }
          continue;
        }
        if (adapt_w[j])
          dense::weight_gradient(d, in, ns, width[j], width[j + 1], fold, one, w_at(j, s + 1));
        if (adapt_b[j]) dense::bias_gradient(d, ns, width[j + 1], fold, b_at(j, s + 1));
      }
    }

    // v_K: the query loss's gradient at θ_K, for every tensor.
    set_weights(K);
    for (std::size_t j = 0; j < L; ++j) outs[j + 1] = query_act[j].data();
    dense::forward_rows(xq, nq, width, step_w, step_b, outs);
    loss += dense::loss_gradient(query_act[L - 1].data(), nq, outputs, kind,
                                 query_targets.target(t), query_targets.classes(t),
                                 query_targets.weight(t), query_targets.count(t));
    {
      S* d = query_act[L - 1].data();
      S* below = grad_a.data();
      for (std::size_t j = L; j-- > 0;) {
        const S* in = j == 0 ? xq : query_act[j - 1].data();
        if (j > 0) {
          dense::input_product(w_at(j, K), d, nq, width[j], width[j + 1], zero, below);
          dense::relu_gradient(below, query_act[j - 1].data(),
                               static_cast<std::int64_t>(nq) * width[j]);
        } else if (query_input_grad) {
          dense::input_product(w_at(0, K), d, nq, width[0], width[1], one,
                               query_input_grad + t * nq * width[0], scale);
        }
        dense::weight_gradient(d, in, nq, width[j], width[j + 1], one, zero, v_w[j].data());
        std::fill(v_b[j].begin(), v_b[j].end(), zero);
        dense::bias_gradient(d, nq, width[j + 1], one, v_b[j].data());
        d = below;
        below = below == grad_a.data() ? grad_b.data() : grad_a.data();
      }
    }

    // Back through the steps: v_s = v_{s+1} - α H_S(θ_s) (M v_{s+1}), the Hessian-vector product
    // folded into v by the products' alpha = -α, beta = 1.
    for (int s = K; s-- > 0;) {
      if (per_element) {
        for (std::size_t j = 0; j < L; ++j) {
          if (adapt_w[j])
            rates_step(v_w[j].data(), rate_w[j], gw_steps[j].data() + s * w_size[j], w_size[j],
                       scale, u_w[j].data(), rate_sum_w[j]);
          if (adapt_b[j])
            rates_step(v_b[j].data(), rate_b[j], gb_steps[j].data() + s * width[j + 1],
                       width[j + 1], scale, u_b[j].data(), rate_sum_b[j]);
        }
      }
      // R-forward: r[j], the change of layer j's output (after its ReLU) along the direction.
      std::fill(moves.begin(), moves.end(), false);
      for (std::size_t j = lowest_adapted; j < L; ++j) {
        S* rj = r[j].data();
        const S* in = j == 0 ? xs : act_at(s, j - 1);
        S beta = zero;
        if (adapt_b[j]) {
          for (int row = 0; row < ns; ++row)
            std::copy(dir_b(j), dir_b(j) + width[j + 1], rj + row * width[j + 1]);
          beta = one;
        }
        if (adapt_w[j]) {
          blas::gemm("T", "N", &width[j + 1], &ns, &width[j], &one, dir_w(j), &width[j], in,
                     &width[j], &beta, rj, &width[j + 1]);
          beta = one;
        }
        if (j > 0 && moves[j - 1]) {
          blas::gemm("T", "N", &width[j + 1], &ns, &width[j], &one, w_at(j, s), &width[j],
                     r[j - 1].data(), &width[j], &beta, rj, &width[j + 1]);
          beta = one;
        }
        moves[j] = beta == one;
        if (moves[j] && j + 1 < L)
          dense::relu_gradient(rj, act_at(s, j), static_cast<std::int64_t>(ns) * width[j + 1]);
      }
      // R-backward: rd, the change of the loss gradient at layer j's output.
      S* rd = grad_a.data();
      S* rd_below = grad_b.data();
      bool rd_moves = moves[L - 1];
      if (rd_moves) {
        std::copy(r[L - 1].begin(), r[L - 1].end(), rd);
        dense::loss_hessian_product(rd, ns, outputs, kind, curvature[s]);
      }
      for (std::size_t j = L; j-- > 0;) {
        const S* in = j == 0 ? xs : act_at(s, j - 1);
        const bool input_moves = j > 0 && moves[j - 1];
        bool below_moves = false;
        if (j > 0) {
          // Uses v_w[j] before this step's update below: the direction M v_{s+1}.
          S beta = zero;
          if (rd_moves) {
            dense::input_product(w_at(j, s), rd, ns, width[j], width[j + 1], beta, rd_below);
            beta = one;
          }
          if (adapt_w[j]) {
            dense::input_product(dir_w(j), delta_at(s, j), ns, width[j], width[j + 1], beta,
                                 rd_below);
            beta = one;
          }
          below_moves = beta == one;
          if (below_moves)
            dense::relu_gradient(rd_below, act_at(s, j - 1),
                                 static_cast<std::int64_t>(ns) * width[j]);
        } else if (support_input_grad) {
          // The inputs' share: -α (∂∇_θL_S / ∂x)ᵀ M v_{s+1}, the same R-operator at the input
          // (where no ReLU is).
          S* g = support_input_grad + t * ns * width[0];
          if (rd_moves)
            dense::input_product(w_at(0, s), rd, ns, width[0], width[1], one, g, fold * scale);
          if (adapt_w[0])
            dense::input_product(dir_w(0), delta_at(s, 0), ns, width[0], width[1], one, g,
                                 fold * scale);
        }
        if (rd_moves) {
          dense::weight_gradient(rd, in, ns, width[j], width[j + 1], fold, one, v_w[j].data());
          dense::bias_gradient(rd, ns, width[j + 1], fold, v_b[j].data());
        }
        if (input_moves)
          dense::weight_gradient(delta_at(s, j), r[j - 1].data(), ns, width[j], width[j + 1], fold,
                                 one, v_w[j].data());
        std::swap(rd, rd_below);
        rd_moves = below_moves;
      }
    }

    for (std::size_t j = 0; j < L; ++j) {
      for (std::int64_t k = 0; k < w_size[j]; ++k) sums[2 * j][k] += scale * v_w[j][k];
      for (int k = 0; k < width[j + 1]; ++k) sums[2 * j + 1][k] += scale * v_b[j][k];
    }
  }
  return loss;
}

}  // namespace

bool dense_maml_supports(const torch::Tensor& support_x, const torch::Tensor& query_x,
                         const std::vector<torch::Tensor>& layers) {
  if (!dense_pass_supports(support_x, layers) || !dense_pass_supports(query_x, layers))
    return false;
  if (support_x.size(0) != query_x.size(0)) return false;
  for (std::size_t e = 0; e < layers.size(); ++e)
    if (layers[e].dim() != (e % 2 == 0 ? 2 : 1)) return false;
  return true;
}

double dense_maml_gradient(const torch::Tensor& support_x, const StackedBatch& support,
                           const torch::Tensor& query_x, const StackedBatch& query,
                           const std::vector<torch::Tensor>& layers, tasks::LabelKind kind,
                           SecondOrderPlan& plan) {
  if (!dense_maml_supports(support_x, query_x, layers))
    throw std::invalid_argument(
        "dense_maml_gradient: unsupported tensors (CPU, contiguous, one dtype, shared layers)");
  if (plan.adapt.size() != layers.size() || plan.sums.size() != layers.size() || plan.steps < 0)
    throw std::invalid_argument("dense_maml_gradient: a plan that does not fit the layers");
  if (!plan.rates.empty()) {
    if (plan.rates.size() != layers.size() || plan.rate_sums.size() != layers.size())
      throw std::invalid_argument("dense_maml_gradient: one rate per tensor of the layers");
    for (std::size_t e = 0; e < layers.size(); ++e)
      for (const torch::Tensor* t : {&plan.rates[e], &plan.rate_sums[e]})
        if (!t->defined() || !t->is_contiguous() || t->sizes() != layers[e].sizes() ||
            t->scalar_type() != layers[e].scalar_type())
          throw std::invalid_argument("dense_maml_gradient: a rate of the wrong shape or dtype");
  }
  auto fits = [](const torch::Tensor& grad, const torch::Tensor& input) {
    return !grad.defined() || (grad.is_contiguous() && grad.sizes() == input.sizes() &&
                               grad.scalar_type() == input.scalar_type());
  };
  if (!fits(plan.support_input_grad, support_x) || !fits(plan.query_input_grad, query_x))
    throw std::invalid_argument("dense_maml_gradient: an input gradient of the wrong shape");
  for (std::size_t e = 0; e < layers.size(); ++e) {
    const torch::Tensor& sum = plan.sums[e];
    if (!sum.defined() || !sum.is_contiguous() || sum.sizes() != layers[e].sizes() ||
        sum.scalar_type() != layers[e].scalar_type())
      throw std::invalid_argument(
          "dense_maml_gradient: a gradient sum of the wrong shape or dtype");
  }
  torch::NoGradGuard no_grad;
  if (support_x.scalar_type() == torch::kFloat64)
    return run<double>(support_x, support, query_x, query, layers, kind, plan);
  return run<float>(support_x, support, query_x, query, layers, kind, plan);
}

}  // namespace ml::models
