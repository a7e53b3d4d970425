// BLAS's gemm on LibTorch's matrix product: see blas.hpp.
#include <torch/torch.h>

#include "models/blas.hpp"

namespace ml::models::blas {
namespace {

// A column-major matrix stored [rows, cols] with leading dimension ld is, read row-major, its
// transpose: a [cols, rows] view with strides [ld, 1]. So C = alpha op(A) op(B) + beta C is,
// on those views, C' = alpha op(B)' op(A)' + beta C'.
template <typename T>
void gemm_on_views(char transa, char transb, int m, int n, int k, T alpha, const T* a, int lda,
                   const T* b, int ldb, T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  const auto options = torch::TensorOptions().dtype(torch::CppTypeToScalarType<T>());
  auto view = [&](const T* data, int rows, int cols, int ld) {
    // from_blob takes a mutable pointer; the inputs are only read.
    return torch::from_blob(const_cast<T*>(data), {cols, rows}, {ld, 1}, options);
  };
  const bool a_transposed = transa == 'T' || transa == 't';
  const bool b_transposed = transb == 'T' || transb == 't';
  // op(A)' [k, m] and op(B)' [n, k].
  const torch::Tensor a_view = a_transposed ? view(a, k, m, lda).t() : view(a, m, k, lda);
  const torch::Tensor b_view = b_transposed ? view(b, n, k, ldb).t() : view(b, k, n, ldb);
  torch::Tensor c_view = view(c, m, n, ldc);
  torch::NoGradGuard no_grad;
  if (k <= 0) {
    // BLAS: op(A) op(B) is zero; C is scaled (and not read when beta is 0).
    if (beta == T(0))
      c_view.zero_();
    else
      c_view.mul_(beta);
    return;
  }
  // addmm_ ignores C's values when beta is 0, as BLAS does (NaN there does not propagate).
  c_view.addmm_(b_view, a_view, beta, alpha);
}

}  // namespace

void torch_gemm(char transa, char transb, int m, int n, int k, float alpha, const float* a, int lda,
                const float* b, int ldb, float beta, float* c, int ldc) {
  gemm_on_views(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void torch_gemm(char transa, char transb, int m, int n, int k, double alpha, const double* a,
                int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  gemm_on_views(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ml::models::blas
