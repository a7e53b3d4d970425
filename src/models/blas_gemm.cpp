// blas::gemm: LIBXSMM's kernels for the small float products they cover, OpenBLAS for the rest
// (see blas.hpp).
#include "models/blas.hpp"

#ifndef ML_TORCH_GEMM

#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef ML_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace ml::models::blas {
namespace {

bool transposed(const char* op) {
  return *op == 'T' || *op == 't';
}

#ifdef ML_HAVE_LIBXSMM
// A kernel for C = A op(B) + beta C with A untransposed, alpha 1 and beta 0 or 1: what LIBXSMM
// 1.17 generates. Null where it has none (also m·n·k above its limit, where OpenBLAS's
// blocking pays anyway).
libxsmm_smmfunction dispatch_kernel(int m, int n, int k, int lda, int ldb, int ldc, bool trans_b,
                                    float beta) {
  const int flags = trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const float one = 1.0f;
  return libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &one, &beta, &flags, nullptr);
}

// The kernels this thread used last, by shape: LIBXSMM's registry lookup (hashing and comparing
// a whole GEMM descriptor) cost more than a W1 product's arithmetic at 2% of the meta-step, and
// a meta-step asks for the same few dozen shapes thousands of times.
struct KernelKey {
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  bool trans_b = false, beta_one = false;
  bool operator==(const KernelKey& o) const {
    return m == o.m && n == o.n && k == o.k && lda == o.lda && ldb == o.ldb && ldc == o.ldc &&
           trans_b == o.trans_b && beta_one == o.beta_one;
  }
};
struct KernelCache {
  static constexpr std::size_t kSlots = 256;  // direct-mapped; a collision only re-dispatches
  struct Slot {
    bool used = false;
    KernelKey key;
    libxsmm_smmfunction kernel = nullptr;
  };
  Slot slots[kSlots];
};

libxsmm_smmfunction small_kernel(int m, int n, int k, int lda, int ldb, int ldc, bool trans_b,
                                 float beta) {
  thread_local KernelCache cache;
  const KernelKey key{m, n, k, lda, ldb, ldc, trans_b, beta == 1.0f};
  std::size_t hash = 0;
  for (int part : {m, n, k, lda, ldb, ldc, 2 * int(trans_b) + int(key.beta_one)})
    hash = hash * 1000003u + static_cast<unsigned>(part);
  KernelCache::Slot& slot = cache.slots[(hash ^ (hash >> 17)) % KernelCache::kSlots];
  if (!slot.used || !(slot.key == key))
    slot = {true, key, dispatch_kernel(m, n, k, lda, ldb, ldc, trans_b, beta)};
  return slot.kernel;
}

// Per-thread buffers for the copies below, grown as needed and kept: a meta-step makes
// thousands of these calls.
struct Scratch {
  std::vector<float> operand;
  // At least `count` floats of the operand buffer, contents unspecified. Never shrunk: a
  // resize() down and up again zero-filled the buffer on every call (~3% of W1 Reptile).
  float* operand_of(std::size_t count) {
    if (operand.size() < count) operand.resize(count);
    return operand.data();
  }
};
Scratch& scratch() {
  thread_local Scratch buffers;
  return buffers;
}

// C = Aᵀ op(B) + beta C, A stored k x m (a layer's weights in a forward product). The kernels
// cannot read A transposed, and a kernel whose rows are the task's few rows (Cᵀ = op(B)ᵀ A)
// runs at a quarter of the rate of one whose rows are the layer's width, so A is transposed
// into a buffer (LIBXSMM's transpose: a 128 x 32 layer in ~0.6 µs, against ~1 µs for the
// product and ~3.5 µs for OpenBLAS's whole transposed product). Only where the weights are the
// taller side (m >= n); the rest stays with OpenBLAS.
bool small_gemm_transposed_a(const char* transb, int m, int n, int k, const float* a, int lda,
                             const float* b, int ldb, float beta, float* c, int ldc) {
  if (m < n) return false;
  const libxsmm_smmfunction kernel = small_kernel(m, n, k, m, ldb, ldc, transposed(transb), beta);
  if (kernel == nullptr) return false;
  float* copy = scratch().operand_of(static_cast<std::size_t>(m) * k);
  libxsmm_otrans(copy, a, sizeof(float), k, m, lda, m);
  kernel(copy, b, c);
  return true;
}

// C = alpha op(A) op(B) + beta C on LIBXSMM's kernels where they apply; false (nothing written)
// where they do not.
bool small_gemm(const char* transa, const char* transb, int m, int n, int k, float alpha,
                const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (alpha == 0.0f || m <= 0 || n <= 0 || k <= 0 || (beta != 0.0f && beta != 1.0f)) return false;
  if (transposed(transa))
    return alpha == 1.0f && small_gemm_transposed_a(transb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  const bool trans_b = transposed(transb);
  if (alpha == 1.0f) {
    const libxsmm_smmfunction kernel = small_kernel(m, n, k, lda, ldb, ldc, trans_b, beta);
    if (kernel == nullptr) return false;
    kernel(a, b, c);
    return true;
  }
  // alpha op(A) op(B) = (alpha A) op(B) = A (alpha op(B)): scale a packed copy of whichever
  // operand is smaller (a task's rows, not the layer's weights). The rounding differs from
  // BLAS's alpha (A B) by an ulp, the same way every time.
  // A column-major rows x cols matrix with leading dimension ld, times alpha, packed into the
  // scratch buffer.
  auto scaled_copy = [&](const float* matrix, int rows, int cols, int ld) {
    float* copy = scratch().operand_of(static_cast<std::size_t>(rows) * cols);
    for (int j = 0; j < cols; ++j)
      for (int i = 0; i < rows; ++i)
        copy[i + static_cast<std::size_t>(j) * rows] =
            alpha * matrix[i + static_cast<std::size_t>(j) * ld];
    return copy;
  };
  const bool scale_a = m <= n;  // A is m x k, op(B) k x n
  int packed_lda = lda, packed_ldb = ldb;
  const float *use_a = a, *use_b = b;
  if (scale_a) {
    use_a = scaled_copy(a, m, k, lda);
    packed_lda = m;
  } else {
    const int rows = trans_b ? n : k, cols = trans_b ? k : n;  // B as stored
    use_b = scaled_copy(b, rows, cols, ldb);
    packed_ldb = rows;
  }
  const libxsmm_smmfunction kernel =
      small_kernel(m, n, k, packed_lda, packed_ldb, ldc, trans_b, beta);
  if (kernel == nullptr) return false;
  kernel(use_a, use_b, c);
  return true;
}
#endif

bool read_small_gemm_switch() {
#ifdef ML_HAVE_LIBXSMM
  const char* choice = std::getenv("METALEARN_SMALL_GEMM");
  return choice == nullptr || std::strcmp(choice, "blas") != 0;
#else
  return false;
#endif
}

}  // namespace

bool small_gemm_enabled() {
  static const bool enabled = read_small_gemm_switch();
  return enabled;
}

void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
          const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
          const float* beta, float* c, const int* ldc) {
#ifdef ML_HAVE_LIBXSMM
  if (small_gemm_enabled() &&
      small_gemm(transa, transb, *m, *n, *k, *alpha, a, *lda, b, *ldb, *beta, c, *ldc))
    return;
#endif
  sgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k,
          const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
          const double* beta, double* c, const int* ldc) {
  dgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ml::models::blas

#endif  // ML_TORCH_GEMM
