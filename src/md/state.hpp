#pragma once
// The dynamical state of one molecular dynamics frame, and what integrators need of it.
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace atomforge::md {

struct State {
  std::vector<double> position;  // natoms x 3, A, unwrapped (never folded back into the cell)
  std::vector<double> velocity;  // natoms x 3, A/fs
  std::vector<double> force;     // natoms x 3, eV/A, at `position`
  std::vector<double> mass;      // natoms, amu
  double potential_energy = 0;   // eV, at `position`
  int64_t natoms() const { return static_cast<int64_t>(mass.size()); }
};

// Sets force and potential_energy from position.
using ForceFunction = std::function<void(State&)>;

// Normal deviates from mt19937_64 (whose output the standard fixes) by Box-Muller, so a seed gives
// the same trajectory with every standard library.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : engine_(seed) {}
  double operator()();

 private:
  std::mt19937_64 engine_;
  bool have_spare_ = false;
  double spare_ = 0;
};

double kinetic_energy(const State& s);  // eV
// Kinetic temperature in K for `ndof` degrees of freedom.
double temperature(double kinetic_energy, int64_t ndof);
void remove_total_momentum(State& s);
// Maxwell-Boltzmann velocities at `kelvin`, total momentum removed, then scaled to exactly
// `kelvin` over `ndof` degrees of freedom (0 K gives atoms at rest).
void maxwell_boltzmann(State& s, double kelvin, int64_t ndof, Gaussian& gaussian);

}  // namespace atomforge::md
