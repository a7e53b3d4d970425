// models/blas.hpp: both routes of the hand-written kernels' products keep BLAS's semantics
// (column-major operands with leading dimensions, 'N'/'T' operations, alpha and beta, C not read
// when beta is 0): the LibTorch-backed gemm that replaces OpenBLAS in a build without it
// (ML_TORCH_GEMM), and blas::gemm, which sends small float products to LIBXSMM's kernels and the
// rest to OpenBLAS.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "models/blas.hpp"

namespace {

// C = alpha op(A) op(B) + beta C by the definition, column-major.
template <typename T>
void reference_gemm(char ta, char tb, int m, int n, int k, T alpha, const std::vector<T>& a,
                    int lda, const std::vector<T>& b, int ldb, T beta, std::vector<T>& c, int ldc) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      T sum = 0;
      for (int p = 0; p < k; ++p) {
        const T x = ta == 'N' ? a[i + p * lda] : a[p + i * lda];
        const T y = tb == 'N' ? b[p + j * ldb] : b[j + p * ldb];
        sum += x * y;
      }
      T& out = c[i + j * ldc];
      out = beta == T(0) ? alpha * sum : alpha * sum + beta * out;
    }
}

// C = alpha op(A) op(B) + beta C through one of the gemms under test.
template <typename T>
using Gemm = void (*)(char ta, char tb, int m, int n, int k, T alpha, const T* a, int lda,
                      const T* b, int ldb, T beta, T* c, int ldc);

template <typename T>
void expect_gemm_matches_the_definition(Gemm<T> gemm, int m, int n, int k,
                                        std::vector<T> alphas = {T(0.7)},
                                        std::vector<T> betas = {T(0), T(1.3)}) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (char ta : {'N', 'T'})
    for (char tb : {'N', 'T'})
      for (T alpha : alphas)
        for (T beta : betas) {
          SCOPED_TRACE(std::string(1, ta) + tb + " alpha " + std::to_string(alpha) + " beta " +
                       std::to_string(beta) + " m " + std::to_string(m) + " n " +
                       std::to_string(n) + " k " + std::to_string(k));
          // Leading dimensions 2 beyond the rows, so a layout mistake reads the padding.
          const int a_rows = ta == 'N' ? m : k, a_cols = ta == 'N' ? k : m;
          const int b_rows = tb == 'N' ? k : n, b_cols = tb == 'N' ? n : k;
          const int lda = a_rows + 2, ldb = b_rows + 2, ldc = m + 2;
          std::vector<T> a(static_cast<std::size_t>(lda * std::max(a_cols, 1)));
          std::vector<T> b(static_cast<std::size_t>(ldb * std::max(b_cols, 1)));
          std::vector<T> c(static_cast<std::size_t>(ldc * n));
          for (auto* v : {&a, &b, &c})
            for (T& x : *v) x = static_cast<T>(uniform(rng));
          // BLAS does not read C when beta is 0: NaN there must not come out.
          if (beta == T(0))
            for (int j = 0; j < n; ++j) c[static_cast<std::size_t>(j * ldc)] = std::nan("");
          std::vector<T> expected = c;
          reference_gemm<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
          gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          for (int j = 0; j < n; ++j)
            for (int i = 0; i < ldc; ++i) {
              const auto at = static_cast<std::size_t>(i + j * ldc);
              if (i >= m) {
                EXPECT_EQ(c[at], expected[at]) << "padding row " << i << " was written";
              } else {
                // k products of terms in [-1, 1]: float rounding grows with k.
                EXPECT_NEAR(c[at], expected[at], 1e-6 * (k + 10)) << "C(" << i << ", " << j << ")";
              }
            }
        }
}

template <typename T>
void torch_gemm(char ta, char tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                int ldb, T beta, T* c, int ldc) {
  ml::models::blas::torch_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

TEST(TorchGemm, MatchesTheDefinitionForEveryOperationLeadingDimensionAndBeta) {
  expect_gemm_matches_the_definition<float>(torch_gemm<float>, 3, 4, 5);
  expect_gemm_matches_the_definition<double>(torch_gemm<double>, 3, 4, 5);
}

TEST(TorchGemm, AnEmptyInnerDimensionScalesC) {
  expect_gemm_matches_the_definition<double>(torch_gemm<double>, 3, 4, 0);
}

#ifndef ML_TORCH_GEMM
template <typename T>
void blas_gemm(char ta, char tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
               int ldb, T beta, T* c, int ldc) {
  ml::models::blas::gemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

// Every route: LIBXSMM's kernels (A untransposed, beta 0 or 1; alpha 1 directly, 0.7 through a
// scaled copy of the smaller operand, either one depending on the shape) and OpenBLAS (A
// transposed, beta 1.3, double, and products too large for LIBXSMM).
TEST(BlasGemm, MatchesTheDefinitionOnEveryRoute) {
  const std::vector<float> alphas = {1.0f, 0.7f, -0.3f}, betas = {0.0f, 1.0f, 1.3f};
  for (auto [m, n, k] : {std::tuple{3, 4, 5}, std::tuple{128, 10, 32}, std::tuple{10, 64, 128},
                         std::tuple{33, 7, 1}, std::tuple{300, 80, 200}}) {
    expect_gemm_matches_the_definition<float>(blas_gemm<float>, m, n, k, alphas, betas);
    expect_gemm_matches_the_definition<double>(blas_gemm<double>, m, n, k, {1.0, 0.7}, {0.0, 1.0});
  }
  expect_gemm_matches_the_definition<float>(blas_gemm<float>, 3, 4, 0, alphas, betas);
}
#endif

}  // namespace
