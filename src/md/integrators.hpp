#pragma once
// Time-reversible integrators, one force evaluation per step:
// - VelocityVerlet: NVE.
// - Langevin: BAOAB splitting (Leimkuhler & Matthews 2013), exact Ornstein-Uhlenbeck step for
//   the friction and noise; samples the canonical ensemble with small configurational error.
// - NoseHooverChain: Martyna-Klein-Tuckerman chain thermostat, Trotter-split around velocity
//   Verlet (Frenkel & Smit, Algorithm 30-31), deterministic.
// Each reports a conserved quantity: the total energy plus what the thermostat holds or took.
#include <memory>
#include <string>

#include "md/state.hpp"

namespace atomforge::md {

class Integrator {
 public:
  virtual ~Integrator() = default;
  // Advances `s` by one time step; `forces` is called once, at the new positions. `s` must hold
  // the forces at its current positions.
  virtual void step(State& s, const ForceFunction& forces) = 0;
  // Added to the potential and kinetic energy, constant up to integration error.
  virtual double thermostat_energy() const { return 0.0; }
  // Degrees of freedom of the kinetic temperature: 3N - 3 when total momentum is conserved.
  virtual int64_t degrees_of_freedom(int64_t natoms) const { return 3 * natoms - 3; }
};

class VelocityVerlet : public Integrator {
 public:
  explicit VelocityVerlet(double dt_fs) : dt_(dt_fs) {}
  void step(State& s, const ForceFunction& forces) override;

 private:
  double dt_;
};

class Langevin : public Integrator {
 public:
  // `tau_fs`: velocity relaxation time 1/gamma.
  Langevin(double dt_fs, double kelvin, double tau_fs, uint64_t seed);
  void step(State& s, const ForceFunction& forces) override;
  // Minus the kinetic energy the noise and friction added so far.
  double thermostat_energy() const override { return -heat_in_; }
  // Friction and noise act on every atom independently: momentum is not conserved.
  int64_t degrees_of_freedom(int64_t natoms) const override { return 3 * natoms; }

 private:
  double dt_, kelvin_, c1_, c2_;
  Gaussian gaussian_;
  double heat_in_ = 0;
};

class NoseHooverChain : public Integrator {
 public:
  // Thermostat masses Q1 = Nf kT tau^2, Qk = kT tau^2 (k > 1): `tau_fs` is the period of the
  // thermostat's oscillation.
  NoseHooverChain(double dt_fs, double kelvin, double tau_fs, int chain, int64_t natoms);
  void step(State& s, const ForceFunction& forces) override;
  double thermostat_energy() const override;

 private:
  void half_step_thermostat(State& s);
  double dt_, kt_;
  int64_t ndof_;
  std::vector<double> q_, eta_, v_eta_;  // per chain element: mass (eV fs^2), position, velocity (1/fs)
};

}  // namespace atomforge::md
