// Batched matrix product on the BLAS directly: see batched_matmul.hpp.
#include "models/batched_matmul.hpp"

#include <cstdint>

#include "models/blas.hpp"

namespace ml::models {
namespace {

using blas::gemm;

// How BLAS (column-major) reads the row-major matrix X [rows, cols] with element strides
// (row_stride, col_stride): row-major storage is X^T in column-major ("N"), column-major
// storage is X itself, so X^T is "T". Fails (returns false) for other layouts.
bool column_major_view(std::int64_t rows, std::int64_t cols, std::int64_t row_stride,
                       std::int64_t col_stride, char& op, int& ld) {
  if (col_stride == 1 || cols == 1) {
    const std::int64_t leading = rows == 1 ? cols : row_stride;
    if (leading >= cols && leading > 0) {
      op = 'N';
      ld = static_cast<int>(leading);
      return true;
    }
  }
  if (row_stride == 1 || rows == 1) {
    const std::int64_t leading = cols == 1 ? rows : col_stride;
    if (leading >= rows && leading > 0) {
      op = 'T';
      ld = static_cast<int>(leading);
      return true;
    }
  }
  return false;
}

bool usable(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.device().is_cpu() || a.scalar_type() != b.scalar_type()) return false;
  return a.scalar_type() == torch::kFloat32 || a.scalar_type() == torch::kFloat64;
}

// c[t] = a[t] b[t] (+ c[t] when `accumulate`), c contiguous [T, m, n].
template <typename T>
void gemm_loop(torch::Tensor a, torch::Tensor b, torch::Tensor& c, bool accumulate) {
  const std::int64_t tasks = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
  char op_a, op_b;
  int ld_a, ld_b;
  if (!column_major_view(m, k, a.stride(1), a.stride(2), op_a, ld_a)) {
    a = a.contiguous();
    column_major_view(m, k, a.stride(1), a.stride(2), op_a, ld_a);
  }
  if (!column_major_view(k, n, b.stride(1), b.stride(2), op_b, ld_b)) {
    b = b.contiguous();
    column_major_view(k, n, b.stride(1), b.stride(2), op_b, ld_b);
  }
  if (c.numel() == 0) return;
  if (k == 0) {
    if (!accumulate) c.zero_();
    return;
  }
  const T one = 1, beta = accumulate ? 1 : 0;
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int ld_c = static_cast<int>(n);
  const T* pa = a.data_ptr<T>();
  const T* pb = b.data_ptr<T>();
  T* pc = c.data_ptr<T>();
  // Row-major C = A B is column-major C^T = B^T A^T: B's view comes first.
  for (std::int64_t t = 0; t < tasks; ++t)
    gemm(&op_b, &op_a, &M, &N, &K, &one, pb + t * b.stride(0), &ld_b, pa + t * a.stride(0), &ld_a,
         &beta, pc + t * m * n, &ld_c);
}

void blas_product(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& c,
                  bool accumulate) {
  // Named in profiles: custom autograd forwards are otherwise invisible there.
  RECORD_FUNCTION("ml::batched_gemm", std::vector<c10::IValue>({a, b}));
  if (a.scalar_type() == torch::kFloat64)
    gemm_loop<double>(a, b, c, accumulate);
  else
    gemm_loop<float>(a, b, c, accumulate);
}

torch::Tensor blas_product(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor c = torch::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  blas_product(a, b, c, false);
  return c;
}

torch::Tensor op(const torch::Tensor& x, bool transpose) {
  return transpose ? x.transpose(1, 2) : x;
}

// op(a) op(b), with the transposes as flags rather than views: the gradients it hands back are
// contiguous in a's and b's own layout. A transposed view would hand a strided gradient to
// every elementwise backward after it (ReLU's is 4x slower on one).
struct BatchedMatmulFunction : torch::autograd::Function<BatchedMatmulFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b, bool transpose_a, bool transpose_b) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["ta"] = transpose_a;
    ctx->saved_data["tb"] = transpose_b;
    return blas_product(op(a, transpose_a), op(b, transpose_b));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    const bool ta = ctx->saved_data["ta"].toBool(), tb = ctx->saved_data["tb"].toBool();
    torch::Tensor grad_a, grad_b;
    // Through batched_matmul again, so a second-order graph records these products too.
    // C = op(A) op(B): dA = G op(B)ᵀ, or its transpose op(B) Gᵀ when A enters transposed.
    if (ctx->needs_input_grad(0))
      grad_a = ta ? batched_matmul(b, g, tb, true) : batched_matmul(g, b, false, !tb);
    // dB = op(A)ᵀ G, or Gᵀ op(A) when B enters transposed.
    if (ctx->needs_input_grad(1))
      grad_b = tb ? batched_matmul(g, a, true, ta) : batched_matmul(a, g, !ta, false);
    return {grad_a, grad_b, torch::Tensor(), torch::Tensor()};
  }
};

struct BatchedLinearFunction : torch::autograd::Function<BatchedLinearFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w, const torch::Tensor& bias) {
    ctx->save_for_backward({x, w});
    torch::Tensor y = bias.unsqueeze(1).expand({x.size(0), x.size(1), w.size(1)}).contiguous();
    blas_product(x, w.transpose(1, 2), y, /*accumulate=*/true);
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &w = saved[1], &g = grads[0];
    torch::Tensor grad_x, grad_w, grad_bias;
    if (ctx->needs_input_grad(0)) grad_x = batched_matmul(g, w);
    if (ctx->needs_input_grad(1)) grad_w = batched_matmul(g, x, /*transpose_a=*/true);
    if (ctx->needs_input_grad(2)) grad_bias = g.sum(1);
    return {grad_x, grad_w, grad_bias};
  }
};

}  // namespace

torch::Tensor batched_linear(const torch::Tensor& x, const torch::Tensor& w,
                             const torch::Tensor& bias) {
  if (!usable(x, w) || bias.scalar_type() != x.scalar_type())
    return torch::baddbmm(bias.unsqueeze(1), x, w.transpose(1, 2));
  return BatchedLinearFunction::apply(x, w, bias);
}

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, bool transpose_a,
                             bool transpose_b) {
  if (!usable(a, b)) return torch::bmm(op(a, transpose_a), op(b, transpose_b));
  return BatchedMatmulFunction::apply(a, b, transpose_a, transpose_b);
}

bool batched_matmul_uses_blas() {
  return true;  // linked, so always there
}

}  // namespace ml::models
