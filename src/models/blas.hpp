// The Fortran BLAS gemm of the BLAS the build links (OpenBLAS on Debian; Debian's libtorch uses
// the same library), overloaded on float and double so templated kernels call one name. Linking
// against a BLAS without these symbols fails at link time instead of leaving products on a slow
// path. Column-major, as BLAS is: a row-major matrix [rows, cols] is its transpose with leading
// dimension cols.
#pragma once

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace ml::models::blas {

// C = alpha op(A) op(B) + beta C, BLAS's own argument order and meaning.
inline void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                 const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                 const float* beta, float* c, const int* ldc) {
  sgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                 const double* alpha, const double* a, const int* lda, const double* b,
                 const int* ldb, const double* beta, double* c, const int* ldc) {
  dgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ml::models::blas
