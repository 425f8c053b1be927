// Dynamics with a real model on the bundled water frame (192 atoms, periodic): the skin
// neighbour list against a fresh list every step, the order of velocity Verlet from the scaling
// of its energy error with the time step, energy drift, and the thermostats' temperatures; and
// energy conservation on an initialised PaiNN model.
#include <cmath>
#include <functional>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../model/model_test_util.hpp"
#include "md/elements.hpp"
#include "md/integrators.hpp"
#include "md/model_forces.hpp"
#include "md/units.hpp"

namespace atomforge::md {
namespace {

using testing::bundled;
using testing::single_frame;

double max_deviation(const std::vector<double>& e) {
  double m = 0;
  for (double v : e) m = std::max(m, std::abs(v - e.front()));
  return m;
}

class WaterDynamics : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    frame_ = new data::System(single_frame("water/data_0", 0));
    // A random network, even with forces of realistic size, has no short-range repulsion: atoms
    // meet and the energy jumps. A model trained for 300 steps on the DFT water frames (force
    // RMSE ~0.3 eV/A, 15 s) holds water together; its surface is smooth but not the DFT one, so
    // the frame relaxes and heats up in NVE, which the tests allow for. Trained once for all the
    // test processes (see cached_model).
    auto input = testing::small_water_input();
    input["model"]["descriptor"]["sel"] = {30, 60};
    input["learning_rate"]["decay_steps"] = 50;
    input["training"]["numb_steps"] = 300;
    input["training"]["save_freq"] = 300;
    input["training"]["disp_training"] = false;
    input["training"]["num_threads"] = 1;
    const std::string path = testing::cached_model(input, true);
    if (!path.empty()) model_ = testing::load_model(path).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete frame_;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr) << "training the test model failed"; }

  // The helpers take the trained model unless given another.
  State initial_state(double kelvin, uint64_t seed, const model::EnergyModel& m = *model_) const {
    State s;
    s.position = frame_->coord;
    for (int32_t t : types(m)) s.mass.push_back(atomic_mass(m.type_map()[t]));
    Gaussian gaussian(seed);
    maxwell_boltzmann(s, kelvin, 3 * s.natoms() - 3, gaussian);
    return s;
  }
  std::vector<int32_t> types(const model::EnergyModel& m = *model_) const {
    return data::map_types(*frame_, m.type_map());
  }
  ModelForces forces(double skin, const model::EnergyModel& m = *model_) const {
    std::array<double, 9> box{};
    std::copy(frame_->box.begin(), frame_->box.end(), box.begin());
    return ModelForces(m, m.only_head(), types(m), box, true, skin);
  }
  // The largest deviation of the total energy over the same 30 fs from the same start (300 K),
  // at dt = 0.5 and 0.25 fs.
  std::array<double, 2> deviations_at_halved_timestep(const model::EnergyModel& m) {
    std::array<double, 2> deviation{};
    for (int k = 0; k < 2; ++k) {
      const double dt = 0.5 / (1 << k);
      State s = initial_state(300.0, 2, m);
      ModelForces f = forces(1.0, m);
      VelocityVerlet vv(dt);
      deviation[k] = max_deviation(run(vv, s, f, static_cast<int64_t>(std::lround(30.0 / dt))).total);
    }
    return deviation;
  }
  // Total energy (plus thermostat energy) and temperature after each of `steps` steps.
  struct Series {
    std::vector<double> conserved, total, temperature;
  };
  Series run(Integrator& integrator, State& s, ModelForces& f, int64_t steps) const {
    const ForceFunction compute = std::ref(f);
    compute(s);
    Series out;
    const int64_t ndof = integrator.degrees_of_freedom(s.natoms());
    for (int64_t k = 0; k <= steps; ++k) {
      if (k > 0) integrator.step(s, compute);
      const double ekin = kinetic_energy(s);
      out.total.push_back(s.potential_energy + ekin);
      out.conserved.push_back(s.potential_energy + ekin + integrator.thermostat_energy());
      out.temperature.push_back(temperature(ekin, ndof));
    }
    return out;
  }

  static data::System* frame_;
  static model::EnergyModel* model_;
};

data::System* WaterDynamics::frame_ = nullptr;
model::EnergyModel* WaterDynamics::model_ = nullptr;

TEST_F(WaterDynamics, SkinListGivesTheSameForcesAsAFreshList) {
  State s = initial_state(600.0, 1);
  ModelForces cached = forces(0.4);
  const ForceFunction compute = std::ref(cached);
  VelocityVerlet vv(0.5);
  compute(s);
  const int64_t steps = 60;
  double max_force = 0;
  for (int64_t k = 0; k < steps; ++k) {
    vv.step(s, compute);
    // Reference: the model's own input, from a linked-cell list within rcut at these positions.
    const auto fresh = model_->evaluate(model_->prepare(s.position.data(), frame_->box.data(), true, types(), 1), false);
    ASSERT_EQ(s.potential_energy, fresh.energy.item<double>()) << "step " << k;
    const at::Tensor f = fresh.force.contiguous().view({-1});
    for (int64_t c = 0; c < f.numel(); ++c) {
      ASSERT_EQ(s.force[c], f[c].item<double>()) << "step " << k << " component " << c;
      max_force = std::max(max_force, std::abs(s.force[c]));
    }
  }
  EXPECT_GT(max_force, 0.1);
  // Hydrogens at 600 K move ~0.04 A/fs: skin/2 = 0.2 A is crossed every ~10 steps, not every step.
  EXPECT_GT(cached.builds(), 2);
  EXPECT_LT(cached.builds(), steps / 3);
  EXPECT_EQ(cached.truncated_centres(), 0);
}

// Velocity Verlet's energy error is dt^2 times a function of the trajectory (the shadow
// Hamiltonian differs from H by O(dt^2)); over the same 30 fs from the same start, halving dt
// must cut the largest deviation of the total energy by 4 (3.3-4.7 allows the O(dt^4) terms and
// the slightly different trajectories). An integrator of first order would give 2, of fourth 16.
TEST_F(WaterDynamics, VelocityVerletIsSecondOrder) {
  const auto deviation = deviations_at_halved_timestep(*model_);
  EXPECT_GT(deviation[0], 0.0);
  EXPECT_NEAR(deviation[0] / deviation[1], 4.0, 0.7) << deviation[0] << " " << deviation[1];
}

// NVE drift: the mean total energy of the last quarter of a 100 fs run at dt = 0.5 fs minus that
// of the first quarter, per atom. Velocity Verlet conserves a shadow energy within O(dt^2) of the
// true one (see the test above), so the total energy fluctuates but does not trend: the drift
// must stay below the size of those fluctuations, which a neighbour list missing pairs or forces
// that are not -dE/dx (errors that do not shrink with dt) would exceed. Absolute bounds: drift
// below 1e-4 eV/atom, i.e. heating by less than 0.8 K over the run (2 dE / 3 kB), and fluctuation
// below 1e-3 eV/atom (dt = 0.5 fs resolves the ~9 fs O-H stretch).
TEST_F(WaterDynamics, NveEnergyDriftIsBelowFluctuation) {
  State s = initial_state(300.0, 3);
  ModelForces f = forces(1.0);
  VelocityVerlet vv(0.5);
  const std::vector<double> e = run(vv, s, f, 200).total;
  const std::size_t q = e.size() / 4;
  double first = 0, last = 0;
  for (std::size_t k = 0; k < q; ++k) {
    first += e[k] / q;
    last += e[e.size() - 1 - k] / q;
  }
  const double natoms = static_cast<double>(s.natoms());
  const double drift = std::abs(last - first) / natoms;
  const double fluctuation = max_deviation(e) / natoms;
  EXPECT_LT(drift, fluctuation) << "drift " << drift << " fluctuation " << fluctuation;
  EXPECT_LT(drift, 1e-4);
  EXPECT_LT(fluctuation, 1e-3);
}

// Langevin from 0 K to 300 K. The mean kinetic temperature over the second half of a 200 fs run
// estimates T with a standard error sigma_T / sqrt(n_eff): sigma_T = T sqrt(2 / 3N) = 17.7 K for
// N = 192, and n_eff = (100 fs) / (2 tau) = 5 independent samples (kinetic energy decorrelates
// within tau/2; the potential energy, which exchanges with it, more slowly: taking 2 tau is
// conservative), so 4 standard errors is 32 K. The briefly trained model keeps relaxing and
// releasing heat, which the thermostat removes at the rate 2 gamma (<Ekin> - Ekin_target) of the
// Ornstein-Uhlenbeck step: the expected mean is the target plus that offset (~10 K here).
TEST_F(WaterDynamics, LangevinReachesTheTargetTemperature) {
  State s = initial_state(0.0, 4);
  ModelForces f = forces(1.0);
  const double target = 300.0, tau = 10.0, dt = 0.5;
  Langevin langevin(dt, target, tau, 77);
  const Series series = run(langevin, s, f, 400);
  double mean = 0;
  for (std::size_t k = 200; k < series.temperature.size(); ++k) mean += series.temperature[k] / 201.0;
  // Heat put in per step over the second half: each O step adds (1 - c1^2)(Ekin_target - Ekin) on
  // average, so a negative heat input (heat removed) means a mean above the target.
  const auto heat_in = [&](std::size_t k) { return series.total[k] - series.conserved[k]; };
  const double per_step = (heat_in(400) - heat_in(200)) / 200.0;
  const int64_t ndof = 3 * s.natoms();
  const double offset = -2.0 * per_step / (1.0 - std::exp(-2.0 * dt / tau)) / (ndof * kBoltzmannEvPerK);
  EXPECT_LT(std::abs(offset), 0.1 * target);
  const double sigma = target * std::sqrt(2.0 / ndof) / std::sqrt(100.0 / (2 * tau));
  EXPECT_NEAR(mean, target + offset, 4 * sigma) << "offset " << offset;
  // What the thermostat exchanged is accounted for: total energy plus thermostat energy is
  // conserved up to velocity Verlet's error (~0.01 eV here), far less than the heat exchanged.
  double exchanged = 0;
  for (std::size_t k = 0; k < series.total.size(); ++k) exchanged = std::max(exchanged, std::abs(heat_in(k)));
  EXPECT_GT(exchanged, 1.0);
  EXPECT_LT(max_deviation(series.conserved), 0.02 * exchanged);
}

// Nose-Hoover chain from 150 K to 300 K: the extended energy (particles plus thermostat) is
// conserved while the heat flows in, and the temperature averages to the target over the second
// half (same statistical tolerance as Langevin, with the thermostat period in place of tau).
TEST_F(WaterDynamics, NoseHooverConservesItsEnergyAndReachesTheTarget) {
  State s = initial_state(150.0, 5);
  ModelForces f = forces(1.0);
  const double target = 300.0, tau = 10.0;
  NoseHooverChain nh(0.5, target, tau, 3, s.natoms());
  const Series series = run(nh, s, f, 400);
  double mean = 0;
  for (std::size_t k = 200; k < series.temperature.size(); ++k) mean += series.temperature[k] / 201.0;
  const double sigma = target * std::sqrt(2.0 / (3.0 * s.natoms() - 3)) / std::sqrt(100.0 / (2 * tau));
  EXPECT_NEAR(mean, target, 4 * sigma);
  EXPECT_LT(max_deviation(series.conserved), 0.02 * max_deviation(series.total));
}

// An initialised PaiNN model, as training starts it (data statistics, energy bias), is a smooth
// potential that velocity Verlet integrates: its layers sum messages over ~30 neighbours here,
// divided by sqrt of their mean number (normalise_messages), and its vector messages stay smooth
// where atoms meet (smooth_directions). A random network has no repulsion and its own minima, so
// the frame collapses into them and heats up (to ~4000 K in these 100 fs, atoms meeting at
// 0.15 A): the bound is relative, the total energy staying within 1% of the mean kinetic energy,
// which resolves every step's motion. With the original architecture (plain sums, unit vectors)
// the same network threw atoms out of the box (mean kinetic energy 1e13 eV).
TEST_F(WaterDynamics, InitialisedPaiNNConservesEnergy) {
  auto painn = testing::model_with(
      {"O", "H"}, {{"type", "painn"}, {"rcut", 4.0}, {"features", 16}, {"layers", 2}, {"radial_basis", 8}});
  const data::System system = data::read_deepmd_system(bundled("water/data_0"));
  painn->compute_statistics({system}, {1});
  painn->fit_out_bias(painn->only_head(), {system});
  State s = initial_state(300.0, 3, *painn);
  ModelForces f = forces(1.0, *painn);
  VelocityVerlet vv(0.5);
  const Series series = run(vv, s, f, 200);
  const double ndof = static_cast<double>(vv.degrees_of_freedom(s.natoms()));
  double kinetic = 0;  // mean over the run, eV
  for (double t : series.temperature) kinetic += 0.5 * ndof * kBoltzmannEvPerK * t / series.temperature.size();
  EXPECT_LT(max_deviation(series.total), 0.01 * kinetic) << "mean kinetic energy " << kinetic << " eV";
  // And the stricter check: the error is the integrator's, second order in the timestep (as for
  // se_e2_a above); forces that were not -dE/dr would leave an error that does not shrink.
  const auto deviation = deviations_at_halved_timestep(*painn);
  EXPECT_GT(deviation[0], 0.0);
  EXPECT_NEAR(deviation[0] / deviation[1], 4.0, 0.7) << deviation[0] << " " << deviation[1];
}

}  // namespace
}  // namespace atomforge::md
