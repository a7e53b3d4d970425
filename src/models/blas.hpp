// The Fortran BLAS gemm of the BLAS the build links (OpenBLAS on Debian; Debian's libtorch uses
// the same library), overloaded on float and double so templated kernels call one name. Linking
// against a BLAS without these symbols fails at link time instead of leaving products on a slow
// path. Column-major, as BLAS is: a row-major matrix [rows, cols] is its transpose with leading
// dimension cols.
//
// A build without OpenBLAS (CMake option ML_TORCH_GEMM, the pip-LibTorch build of
// scripts/gpu_check.sh, whose machine has no Debian -dev packages) routes the same calls to
// torch_gemm: LibTorch's own CPU matrix product on the same memory, chosen explicitly at
// configure time rather than found missing at run time.
//
// Few-shot models multiply small matrices (a task's 10 support rows by 32-128 columns), where
// OpenBLAS spends more time packing its operands than multiplying: those go to LIBXSMM's
// just-in-time kernels where the build has LIBXSMM (below).
#pragma once

namespace ml::models::blas {

// BLAS's gemm semantics (C = alpha op(A) op(B) + beta C, column-major, op 'N' or 'T'; C is not
// read when beta is 0) computed with LibTorch's matrix product on the caller's buffers.
void torch_gemm(char transa, char transb, int m, int n, int k, float alpha, const float* a, int lda,
                const float* b, int ldb, float beta, float* c, int ldc);
void torch_gemm(char transa, char transb, int m, int n, int k, double alpha, const double* a,
                int lda, const double* b, int ldb, double beta, double* c, int ldc);

}  // namespace ml::models::blas

#ifdef ML_TORCH_GEMM
namespace ml::models::blas {
template <typename T>
inline void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                 const T* alpha, const T* a, const int* lda, const T* b, const int* ldb,
                 const T* beta, T* c, const int* ldc) {
  torch_gemm(*transa, *transb, *m, *n, *k, *alpha, a, *lda, b, *ldb, *beta, c, *ldc);
}
}  // namespace ml::models::blas
#else
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace ml::models::blas {

// C = alpha op(A) op(B) + beta C, BLAS's own argument order and meaning (models/blas_gemm.cpp).
// In a build with LIBXSMM (CMake option ML_LIBXSMM, on by default) the small float products it
// has kernels for run on those: beta 0 or 1, m·n·k up to LIBXSMM's limit; op(A) = A, an alpha
// other than 1 applied to a copy of the smaller operand first, or op(A) = Aᵀ with alpha 1 and
// m >= n, A transposed into a buffer first. Everything else, and every
// double product, is OpenBLAS's sgemm_ / dgemm_. Both are deterministic for given shapes and
// operands, whichever thread calls.
void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
          const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
          const float* beta, float* c, const int* ldc);
void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
          const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
          const double* beta, double* c, const int* ldc);

// Whether float products may run on LIBXSMM's kernels in this process: built with it and not
// turned off by METALEARN_SMALL_GEMM=blas (the switch the benchmarks compare the two with).
bool small_gemm_enabled();

}  // namespace ml::models::blas
#endif  // ML_TORCH_GEMM
