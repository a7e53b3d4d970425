// One-pass Adam: see adam_update.hpp.
#include "train/adam_update.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace ml::train {

using torch::Tensor;

namespace {

bool fusable(const Tensor& weights, const Tensor& exp_avg, const Tensor& exp_avg_sq,
             const Tensor& grad) {
  const auto dtype = weights.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) return false;
  for (const Tensor* t : {&weights, &exp_avg, &exp_avg_sq, &grad})
    if (!t->device().is_cpu() || t->scalar_type() != dtype || !t->is_contiguous() ||
        t->sizes() != weights.sizes() || t->layout() != torch::kStrided)
      return false;
  return true;
}

// The scalars as torch's kernels see them: each Scalar argument converted to the tensor's type.
template <typename S>
struct Scalars {
  S beta1, one_minus_beta1, beta2, one_minus_beta2, root_correction2, eps, step_size;
  explicit Scalars(const AdamCoefficients& c) {
    const double bias_correction1 = 1 - std::pow(c.beta1, static_cast<double>(c.step));
    const double bias_correction2 = 1 - std::pow(c.beta2, static_cast<double>(c.step));
    beta1 = static_cast<S>(c.beta1), one_minus_beta1 = static_cast<S>(1 - c.beta1);
    beta2 = static_cast<S>(c.beta2), one_minus_beta2 = static_cast<S>(1 - c.beta2);
    root_correction2 = static_cast<S>(std::sqrt(bias_correction2));
    eps = static_cast<S>(c.eps);
    step_size = static_cast<S>(-(c.lr / bias_correction1));
  }
};

// Values [begin, n) one at a time. std::fma and std::sqrt round exactly as the vector
// instructions do, so the split between this loop and the vector loops changes no result.
template <typename S>
void adam_scalar(S* w, S* m, S* v, const S* g, std::int64_t begin, std::int64_t n,
                 const Scalars<S>& k) {
  for (std::int64_t i = begin; i < n; ++i) {
    const S first = std::fma(g[i], k.one_minus_beta1, m[i] * k.beta1);  // mul_(b1).add_(g, 1-b1)
    const S second = std::fma(k.one_minus_beta2 * g[i], g[i], v[i] * k.beta2);  // addcmul_
    const S denom = std::sqrt(second) / k.root_correction2 + k.eps;
    w[i] = w[i] + k.step_size * first / denom;  // addcdiv_(m, denom, -lr / bc1)
    m[i] = first;
    v[i] = second;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define ML_ADAM_AVX2 1
// The same operations on 8 floats or 4 doubles at a time; returns how many values were done.
// Without -mfma in the build, std::fma is a library call per value (W1's 12.5k weights took
// 150 us, against a few here).
__attribute__((target("avx2,fma"))) std::int64_t adam_avx2(float* w, float* m, float* v,
                                                           const float* g, std::int64_t n,
                                                           const Scalars<float>& k) {
  const __m256 beta1 = _mm256_set1_ps(k.beta1), one_minus_beta1 = _mm256_set1_ps(k.one_minus_beta1);
  const __m256 beta2 = _mm256_set1_ps(k.beta2), one_minus_beta2 = _mm256_set1_ps(k.one_minus_beta2);
  const __m256 root_correction2 = _mm256_set1_ps(k.root_correction2), eps = _mm256_set1_ps(k.eps);
  const __m256 step_size = _mm256_set1_ps(k.step_size);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 first =
        _mm256_fmadd_ps(gi, one_minus_beta1, _mm256_mul_ps(_mm256_loadu_ps(m + i), beta1));
    const __m256 second = _mm256_fmadd_ps(_mm256_mul_ps(one_minus_beta2, gi), gi,
                                          _mm256_mul_ps(_mm256_loadu_ps(v + i), beta2));
    const __m256 denom =
        _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(second), root_correction2), eps);
    const __m256 change = _mm256_div_ps(_mm256_mul_ps(step_size, first), denom);
    _mm256_storeu_ps(w + i, _mm256_add_ps(_mm256_loadu_ps(w + i), change));
    _mm256_storeu_ps(m + i, first);
    _mm256_storeu_ps(v + i, second);
  }
  return i;
}

__attribute__((target("avx2,fma"))) std::int64_t adam_avx2(double* w, double* m, double* v,
                                                           const double* g, std::int64_t n,
                                                           const Scalars<double>& k) {
  const __m256d beta1 = _mm256_set1_pd(k.beta1),
                one_minus_beta1 = _mm256_set1_pd(k.one_minus_beta1);
  const __m256d beta2 = _mm256_set1_pd(k.beta2),
                one_minus_beta2 = _mm256_set1_pd(k.one_minus_beta2);
  const __m256d root_correction2 = _mm256_set1_pd(k.root_correction2), eps = _mm256_set1_pd(k.eps);
  const __m256d step_size = _mm256_set1_pd(k.step_size);
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d gi = _mm256_loadu_pd(g + i);
    const __m256d first =
        _mm256_fmadd_pd(gi, one_minus_beta1, _mm256_mul_pd(_mm256_loadu_pd(m + i), beta1));
    const __m256d second = _mm256_fmadd_pd(_mm256_mul_pd(one_minus_beta2, gi), gi,
                                           _mm256_mul_pd(_mm256_loadu_pd(v + i), beta2));
    const __m256d denom =
        _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(second), root_correction2), eps);
    const __m256d change = _mm256_div_pd(_mm256_mul_pd(step_size, first), denom);
    _mm256_storeu_pd(w + i, _mm256_add_pd(_mm256_loadu_pd(w + i), change));
    _mm256_storeu_pd(m + i, first);
    _mm256_storeu_pd(v + i, second);
  }
  return i;
}
#endif

template <typename S>
void adam_loop(S* w, S* m, S* v, const S* g, std::int64_t n, const Scalars<S>& k) {
  std::int64_t done = 0;
#ifdef ML_ADAM_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) done = adam_avx2(w, m, v, g, n, k);
#endif
  adam_scalar(w, m, v, g, done, n, k);
}

// torch::optim::Adam::step's operations (torch 1.13), for what the loop does not take.
void adam_tensor_ops(const Tensor& weights, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                     const Tensor& grad, const AdamCoefficients& c) {
  const double bias_correction1 = 1 - std::pow(c.beta1, static_cast<double>(c.step));
  const double bias_correction2 = 1 - std::pow(c.beta2, static_cast<double>(c.step));
  exp_avg.mul_(c.beta1).add_(grad, 1 - c.beta1);
  exp_avg_sq.mul_(c.beta2).addcmul_(grad, grad, 1 - c.beta2);
  const Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(c.eps);
  weights.addcdiv_(exp_avg, denom, -c.lr / bias_correction1);
}

}  // namespace

void adam_update(const Tensor& weights, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& grad, const AdamCoefficients& c) {
  torch::NoGradGuard no_grad;
  if (!fusable(weights, exp_avg, exp_avg_sq, grad)) {
    adam_tensor_ops(weights, exp_avg, exp_avg_sq, grad, c);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "adam_update", [&] {
    adam_loop(weights.data_ptr<scalar_t>(), exp_avg.data_ptr<scalar_t>(),
              exp_avg_sq.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), weights.numel(),
              Scalars<scalar_t>(c));
  });
  for (const Tensor* t : {&weights, &exp_avg, &exp_avg_sq})
    t->unsafeGetTensorImpl()->bump_version();
}

void adam_update_rows(const Tensor& weights, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                      const Tensor& rows, const Tensor& grad, const AdamCoefficients& c) {
  torch::NoGradGuard no_grad;
  const bool in_place = fusable(weights, exp_avg, exp_avg_sq, weights) && weights.dim() == 2 &&
                        grad.device().is_cpu() && grad.scalar_type() == weights.scalar_type() &&
                        grad.is_contiguous() && grad.dim() == 2 && grad.size(0) == rows.numel() &&
                        grad.size(1) == weights.size(1) && rows.device().is_cpu() &&
                        rows.scalar_type() == torch::kInt64 && rows.is_contiguous();
  if (!in_place) {
    Tensor m = exp_avg.index_select(0, rows), v = exp_avg_sq.index_select(0, rows);
    Tensor w = weights.index_select(0, rows);
    adam_update(w, m, v, grad.contiguous(), c);
    exp_avg.index_copy_(0, rows, m);
    exp_avg_sq.index_copy_(0, rows, v);
    weights.index_copy_(0, rows, w);
    return;
  }
  const std::int64_t count = weights.size(0), width = weights.size(1);
  const std::int64_t* row = rows.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < rows.numel(); ++r)
    if (row[r] < 0 || row[r] >= count)
      throw std::out_of_range("adam_update_rows: row " + std::to_string(row[r]) +
                              " of a table of " + std::to_string(count));
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "adam_update_rows", [&] {
    const Scalars<scalar_t> k(c);
    scalar_t *w = weights.data_ptr<scalar_t>(), *m = exp_avg.data_ptr<scalar_t>(),
             *v = exp_avg_sq.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    // The rows lie scattered over tables far larger than the caches: asking for a few rows
    // ahead overlaps their memory latency, which otherwise dominates (W2: 2 x 7.7k rows).
    constexpr std::int64_t kAhead = 4;
    for (std::int64_t r = 0; r < rows.numel(); ++r) {
      if (r + kAhead < rows.numel()) {
        const std::int64_t next = row[r + kAhead] * width;
        for (std::int64_t b = 0; b < width * std::int64_t(sizeof(scalar_t)); b += 64)
          for (const scalar_t* table : {w, m, v})
            __builtin_prefetch(reinterpret_cast<const char*>(table + next) + b);
      }
      const std::int64_t at = row[r] * width;
      adam_loop(w + at, m + at, v + at, g + r * width, width, k);
    }
  });
  for (const Tensor* t : {&weights, &exp_avg, &exp_avg_sq})
    t->unsafeGetTensorImpl()->bump_version();
}

}  // namespace ml::train
