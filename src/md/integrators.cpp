#include "md/integrators.hpp"

#include <cmath>

#include "core/error.hpp"
#include "md/units.hpp"

namespace atomforge::md {

namespace {

void kick(State& s, double dt) {
  for (int64_t i = 0; i < s.natoms(); ++i) {
    const double a = dt * kEvPerAAmuInAPerFs2 / s.mass[i];
    for (int d = 0; d < 3; ++d) s.velocity[3 * i + d] += a * s.force[3 * i + d];
  }
}

void drift(State& s, double dt) {
  for (std::size_t k = 0; k < s.position.size(); ++k) s.position[k] += dt * s.velocity[k];
}

}  // namespace

void VelocityVerlet::step(State& s, const ForceFunction& forces) {
  kick(s, 0.5 * dt_);
  drift(s, dt_);
  forces(s);
  kick(s, 0.5 * dt_);
}

Langevin::Langevin(double dt_fs, double kelvin, double tau_fs, uint64_t seed)
    : dt_(dt_fs), kelvin_(kelvin), c1_(std::exp(-dt_fs / tau_fs)), c2_(std::sqrt(1.0 - c1_ * c1_)), gaussian_(seed) {}

void Langevin::step(State& s, const ForceFunction& forces) {
  kick(s, 0.5 * dt_);
  drift(s, 0.5 * dt_);
  const double before = kinetic_energy(s);
  // O: v <- c1 v + sqrt((1 - c1^2) kT/m) R, the exact solution of dv = -gamma v dt + noise.
  for (int64_t i = 0; i < s.natoms(); ++i) {
    const double sigma = c2_ * std::sqrt(kBoltzmannEvPerK * kelvin_ / (s.mass[i] * kAmuA2PerFs2InEv));
    for (int d = 0; d < 3; ++d) s.velocity[3 * i + d] = c1_ * s.velocity[3 * i + d] + sigma * gaussian_();
  }
  heat_in_ += kinetic_energy(s) - before;
  drift(s, 0.5 * dt_);
  forces(s);
  kick(s, 0.5 * dt_);
}

NoseHooverChain::NoseHooverChain(double dt_fs, double kelvin, double tau_fs, int chain, int64_t natoms)
    : dt_(dt_fs), kt_(kBoltzmannEvPerK * kelvin), ndof_(3 * natoms - 3) {
  if (chain < 1) fail("Nose-Hoover chain length must be at least 1, got {}", chain);
  q_.assign(static_cast<std::size_t>(chain), kt_ * tau_fs * tau_fs);
  q_[0] *= static_cast<double>(ndof_);
  eta_.assign(q_.size(), 0.0);
  v_eta_.assign(q_.size(), 0.0);
}

// Propagates the chain and scales the particle velocities over dt/2 (Frenkel & Smit's
// chain(K, dt/2)): outer chain elements are updated first and last, each kick of element k
// damped by element k + 1, so the whole operator is time-reversible.
void NoseHooverChain::half_step_thermostat(State& s) {
  const std::size_t m = q_.size();
  const double dt2 = 0.5 * dt_, dt4 = 0.25 * dt_, dt8 = 0.125 * dt_;
  const auto force_on = [&](std::size_t k, double ke) {
    return k == 0 ? (2.0 * ke - static_cast<double>(ndof_) * kt_) / q_[0]
                  : (q_[k - 1] * v_eta_[k - 1] * v_eta_[k - 1] - kt_) / q_[k];
  };
  double ke = kinetic_energy(s);
  v_eta_[m - 1] += force_on(m - 1, ke) * dt4;
  for (std::size_t k = m - 1; k-- > 0;) {
    const double damp = std::exp(-v_eta_[k + 1] * dt8);
    v_eta_[k] = (v_eta_[k] * damp + force_on(k, ke) * dt4) * damp;
  }
  const double scale = std::exp(-v_eta_[0] * dt2);
  for (double& v : s.velocity) v *= scale;
  ke *= scale * scale;
  for (std::size_t k = 0; k < m; ++k) eta_[k] += v_eta_[k] * dt2;
  for (std::size_t k = 0; k + 1 < m; ++k) {
    const double damp = std::exp(-v_eta_[k + 1] * dt8);
    v_eta_[k] = (v_eta_[k] * damp + force_on(k, ke) * dt4) * damp;
  }
  v_eta_[m - 1] += force_on(m - 1, ke) * dt4;
}

void NoseHooverChain::step(State& s, const ForceFunction& forces) {
  half_step_thermostat(s);
  kick(s, 0.5 * dt_);
  drift(s, dt_);
  forces(s);
  kick(s, 0.5 * dt_);
  half_step_thermostat(s);
}

double NoseHooverChain::thermostat_energy() const {
  double e = static_cast<double>(ndof_) * kt_ * eta_[0];
  for (std::size_t k = 0; k < q_.size(); ++k) {
    e += 0.5 * q_[k] * v_eta_[k] * v_eta_[k];
    if (k > 0) e += kt_ * eta_[k];
  }
  return e;
}

}  // namespace atomforge::md
