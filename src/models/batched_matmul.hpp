// A differentiable batched matrix product [T, m, k] x [T, k, n] -> [T, m, n] for the stacked
// inner loop. On the CPU, LibTorch 1.13 without MKL runs torch::bmm as a loop of select() +
// addmm_ per matrix, whose per-matrix bookkeeping costs more than the arithmetic of the small
// matrices meta-learning multiplies (the profile in docs/BENCHMARKS.md). This calls the BLAS
// the build links (sgemm_/dgemm_ of OpenBLAS, the one Debian's libtorch uses too) once per
// matrix on raw pointers instead, reading transposed and broadcast (stride-0) operands in
// place. Its backward is built from the same product, so second-order gradients work. Anywhere
// else (CUDA tensors, other dtypes) it is torch::bmm.
#pragma once

#include <torch/torch.h>

namespace ml::models {

// op(a) op(b), where op transposes the last two dimensions when its flag is set. Pass the
// flags rather than transposed views: the gradients then come back contiguous.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b,
                             bool transpose_a = false, bool transpose_b = false);

// x [T, n, in] w[T]^T + bias[T] for per-task weights w [T, out, in] and biases [T, out]: one
// autograd node instead of a transpose, a product, an unsqueeze and an add, because in a
// second-order inner loop every node is recorded again for the backward of the backward.
torch::Tensor batched_linear(const torch::Tensor& x, const torch::Tensor& w,
                             const torch::Tensor& bias);

// Whether batched_matmul calls the BLAS directly (for benchmark reports; always, now that the
// BLAS is linked).
bool batched_matmul_uses_blas();

}  // namespace ml::models
