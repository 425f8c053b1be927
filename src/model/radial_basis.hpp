#pragma once
// Bases of the graph trunks. Every edge term is multiplied by an envelope that goes to zero
// with its first and second derivatives at rcut, so energy, forces and their derivatives are
// continuous as a neighbour crosses the cut-off.
#include <ATen/ATen.h>

namespace atomforge::model {

// DimeNet's polynomial envelope of d = r/rcut:
// 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2); 1 at r = 0, C2-zero at rcut.
at::Tensor polynomial_envelope(const at::Tensor& r, double rcut, int64_t p);

// (n, K) Bessel functions sqrt(2/rcut) sin(k pi r / rcut) / r, k = 1..K, for r of shape (n, 1).
at::Tensor bessel_basis(const at::Tensor& r, double rcut, int64_t k);

// (n, L) Legendre polynomials P_0..P_{L-1} of x in [-1, 1] (shape (n, 1)), by Bonnet's recursion.
at::Tensor legendre_basis(const at::Tensor& x, int64_t l);

}  // namespace atomforge::model
