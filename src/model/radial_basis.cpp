#include "model/radial_basis.hpp"

#include <cmath>
#include <vector>

namespace atomforge::model {

at::Tensor polynomial_envelope(const at::Tensor& r, double rcut, int64_t p) {
  const at::Tensor d = at::clamp(r / rcut, 0.0, 1.0);
  const double a = (p + 1.0) * (p + 2.0) / 2.0, b = p * (p + 2.0), c = p * (p + 1.0) / 2.0;
  const at::Tensor dp = at::pow(d, static_cast<double>(p));
  return 1.0 - dp * (a - d * (b - c * d));
}

at::Tensor bessel_basis(const at::Tensor& r, double rcut, int64_t k) {
  const at::Tensor n = at::arange(1, k + 1, r.options());
  return std::sqrt(2.0 / rcut) * at::sin(n * (M_PI / rcut) * r) / r;
}

at::Tensor legendre_basis(const at::Tensor& x, int64_t l) {
  std::vector<at::Tensor> p = {at::ones_like(x)};
  if (l > 1) p.push_back(x);
  for (int64_t n = 1; n + 1 < l; ++n) p.push_back(((2.0 * n + 1.0) * x * p[n] - static_cast<double>(n) * p[n - 1]) / (n + 1.0));
  return at::cat(p, 1);
}

}  // namespace atomforge::model
