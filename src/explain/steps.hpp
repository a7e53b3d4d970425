// The number of integration steps (Gauss-Legendre points) of Integrated Gradients: its default
// and its limit, shared by the torch-free explain API, the command line and the quadrature.
#pragma once

namespace ml::explain {

// Integration steps (Gauss-Legendre points) by default: Captum's n_steps default.
inline constexpr int kDefaultSteps = 50;

// The most steps: computing the points is O(m^2) (about a second at 10,000), and by then the
// completeness gap of a smooth model is at float64's rounding while a ReLU network's shrinks
// only like 1/m.
inline constexpr int kMaxSteps = 10000;

}  // namespace ml::explain
