// Adam's update of one parameter tensor (Kingma & Ba 2015, "Adam: A Method for Stochastic
// Optimization", Algorithm 1) in one pass over its values: the outer optimiser's dense step and
// its lazy row-sparse step both call it, so a touched row moves exactly as the dense update
// would move it. torch::optim::Adam (1.13) spends nine tensor operations per parameter on the
// same arithmetic, which cost W1's meta-step ~7% of its time in dispatch alone.
//
// The order of floating-point operations is torch::optim::Adam's as its vectorised CPU kernels
// run it (both moment updates are fused multiply-adds), so on an AVX2 or AVX-512 CPU the result
// equals torch::optim::Adam's bit for bit (measured; tests/test_train.cpp checks it to within
// rounding on any CPU). Anything but contiguous CPU float or double tensors of one shape (a
// CUDA model) runs torch::optim::Adam's own tensor operations instead.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ml::train {

struct AdamCoefficients {
  double lr = 1e-3;  // step size (alpha)
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  std::int64_t step = 1;  // 1 for the first update: the bias corrections' exponent
};

// weights, exp_avg (first moment) and exp_avg_sq (second moment) are updated in place from
// `grad`; all four have one shape. Without weight decay or AMSGrad (the outer optimiser uses
// neither). Bumps the weights' version counter as an in-place torch operation would.
void adam_update(const torch::Tensor& weights, const torch::Tensor& exp_avg,
                 const torch::Tensor& exp_avg_sq, const torch::Tensor& grad,
                 const AdamCoefficients& c);

// adam_update of rows `rows` ([r] int64, distinct) of the tables weights, exp_avg and exp_avg_sq
// ([R, d], one shape), `grad` ([r, d]) holding those rows' gradients; no other row is read or
// written: the lazy row-sparse step. Done in place on CPU tables (no gathered copies of the
// rows); elsewhere the rows are gathered, updated and written back. std::out_of_range for a row
// outside [0, R).
void adam_update_rows(const torch::Tensor& weights, const torch::Tensor& exp_avg,
                      const torch::Tensor& exp_avg_sq, const torch::Tensor& rows,
                      const torch::Tensor& grad, const AdamCoefficients& c);

}  // namespace ml::train
