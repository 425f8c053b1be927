#include "md/state.hpp"

#include <cmath>

#include "md/units.hpp"

namespace atomforge::md {

double Gaussian::operator()() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  // 53 random bits in (0, 1]: log never sees 0.
  const auto uniform = [&] { return (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53; };
  const double r = std::sqrt(-2.0 * std::log(uniform()));
  const double phi = 2.0 * M_PI * uniform();
  spare_ = r * std::sin(phi);
  have_spare_ = true;
  return r * std::cos(phi);
}

double kinetic_energy(const State& s) {
  double twice = 0;
  for (int64_t i = 0; i < s.natoms(); ++i) {
    const double* v = &s.velocity[3 * i];
    twice += s.mass[i] * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  }
  return 0.5 * twice * kAmuA2PerFs2InEv;
}

double temperature(double kinetic_energy, int64_t ndof) {
  return ndof > 0 ? 2.0 * kinetic_energy / (static_cast<double>(ndof) * kBoltzmannEvPerK) : 0.0;
}

void remove_total_momentum(State& s) {
  double p[3] = {0, 0, 0}, m = 0;
  for (int64_t i = 0; i < s.natoms(); ++i) {
    for (int d = 0; d < 3; ++d) p[d] += s.mass[i] * s.velocity[3 * i + d];
    m += s.mass[i];
  }
  for (int64_t i = 0; i < s.natoms(); ++i)
    for (int d = 0; d < 3; ++d) s.velocity[3 * i + d] -= p[d] / m;
}

void maxwell_boltzmann(State& s, double kelvin, int64_t ndof, Gaussian& gaussian) {
  s.velocity.assign(3 * s.mass.size(), 0.0);
  for (int64_t i = 0; i < s.natoms(); ++i) {
    // Each component has variance kT/m; kT/m in A^2/fs^2 is (kT in eV) / (m in amu) / 103.64...
    const double sigma = std::sqrt(kBoltzmannEvPerK * kelvin / (s.mass[i] * kAmuA2PerFs2InEv));
    for (int d = 0; d < 3; ++d) s.velocity[3 * i + d] = sigma * gaussian();
  }
  remove_total_momentum(s);
  const double current = temperature(kinetic_energy(s), ndof);
  if (current > 0) {
    const double scale = std::sqrt(kelvin / current);
    for (double& v : s.velocity) v *= scale;
  }
}

}  // namespace atomforge::md
