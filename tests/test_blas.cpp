// models/blas.hpp: the LibTorch-backed gemm that replaces OpenBLAS in a build without it
// (ML_TORCH_GEMM) keeps BLAS's semantics: column-major operands with leading dimensions, 'N'/'T'
// operations, alpha and beta, and C not read when beta is 0.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
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

template <typename T>
void expect_torch_gemm_matches_the_definition(int k) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform(-1, 1);
  const int m = 3, n = 4;
  for (char ta : {'N', 'T'})
    for (char tb : {'N', 'T'})
      for (T beta : {T(0), T(1.3)}) {
        SCOPED_TRACE(std::string(1, ta) + tb + " beta " + std::to_string(beta) + " k " +
                     std::to_string(k));
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
        reference_gemm<T>(ta, tb, m, n, k, T(0.7), a, lda, b, ldb, beta, expected, ldc);
        ml::models::blas::torch_gemm(ta, tb, m, n, k, T(0.7), a.data(), lda, b.data(), ldb, beta,
                                     c.data(), ldc);
        for (int j = 0; j < n; ++j)
          for (int i = 0; i < ldc; ++i) {
            const auto at = static_cast<std::size_t>(i + j * ldc);
            if (i >= m) {
              EXPECT_EQ(c[at], expected[at]) << "padding row " << i << " was written";
            } else {
              EXPECT_NEAR(c[at], expected[at], 1e-5) << "C(" << i << ", " << j << ")";
            }
          }
      }
}

TEST(TorchGemm, MatchesTheDefinitionForEveryOperationLeadingDimensionAndBeta) {
  expect_torch_gemm_matches_the_definition<float>(5);
  expect_torch_gemm_matches_the_definition<double>(5);
}

TEST(TorchGemm, AnEmptyInnerDimensionScalesC) {
  expect_torch_gemm_matches_the_definition<double>(0);
}

}  // namespace
