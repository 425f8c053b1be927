// Observables and helpers of the md layer against analytic results and brute force: RDF of
// uniformly random points (ideal gas, g = 1) and coordination numbers counted pair by pair, MSD of
// ballistic and Brownian motion, Maxwell-Boltzmann velocities, the unit constant, masses.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "md/elements.hpp"
#include "md/msd.hpp"
#include "md/rdf.hpp"
#include "md/state.hpp"
#include "md/units.hpp"

namespace atomforge::md {
namespace {

TEST(MdUnits, KineticEnergyConstantFromSiDefinitions) {
  // 1 amu A^2/fs^2 in eV, independently: amu in kg, A and fs in m and s, eV in J.
  const double amu = 1.66053906660e-27, eV = 1.602176634e-19;
  EXPECT_NEAR(kAmuA2PerFs2InEv, amu * 1e-20 / 1e-30 / eV, 1e-9);
  EXPECT_NEAR(kAmuA2PerFs2InEv, 103.6427, 1e-4);
  EXPECT_NEAR(kAmuA2PerFs2InEv * kEvPerAAmuInAPerFs2, 1.0, 1e-15);
}

TEST(MdElements, MassesAndUnknownElement) {
  EXPECT_NEAR(atomic_mass("H"), 1.008, 1e-9);
  EXPECT_NEAR(atomic_mass("O"), 15.999, 1e-9);
  EXPECT_NEAR(atomic_mass("Cu"), 63.546, 1e-9);
  EXPECT_NEAR(atomic_mass("Kr"), 83.798, 1e-9);
  try {
    atomic_mass("Xx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'Xx'"), std::string::npos) << e.what();
  }
}

TEST(MdVelocities, MaxwellBoltzmannHasTheTemperatureAndNoMomentum) {
  State s;
  for (int i = 0; i < 1000; ++i) s.mass.push_back(i % 3 == 0 ? 15.999 : 1.008);
  Gaussian gaussian(5);
  const int64_t ndof = 3 * s.natoms() - 3;
  maxwell_boltzmann(s, 300.0, ndof, gaussian);
  EXPECT_NEAR(temperature(kinetic_energy(s), ndof), 300.0, 1e-9);
  double p[3] = {0, 0, 0};
  for (int64_t i = 0; i < s.natoms(); ++i)
    for (int d = 0; d < 3; ++d) p[d] += s.mass[i] * s.velocity[3 * i + d];
  for (double c : p) EXPECT_NEAR(c, 0.0, 1e-10);
  // One common scaling factor cannot impose equipartition: each species. <m v^2> per component is kT
  // separately (equipartition, not just the total), within 5 standard errors of a chi-square mean.
  for (double mass : {15.999, 1.008}) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < s.natoms(); ++i) {
      if (s.mass[i] != mass) continue;
      for (int d = 0; d < 3; ++d) sum += mass * s.velocity[3 * i + d] * s.velocity[3 * i + d];
      n += 3;
    }
    const double kt = kBoltzmannEvPerK * 300.0, measured = sum / static_cast<double>(n) * kAmuA2PerFs2InEv;
    EXPECT_NEAR(measured / kt, 1.0, 5.0 * std::sqrt(2.0 / static_cast<double>(n)));
  }
}

TEST(MdVelocities, SeededGaussianIsStandardNormal) {
  Gaussian a(11), b(11);
  double sum = 0, sum2 = 0;
  const int n = 200000;
  for (int k = 0; k < n; ++k) {
    const double x = a();
    EXPECT_EQ(x, b());
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
}

// Uniform random points in a triclinic cell, two species.
struct Gas {
  std::vector<double> box{9.0, 0.0, 0.0, 2.0, 8.0, 0.0, 1.0, -1.5, 10.0};
  std::vector<int32_t> types;
  std::vector<double> position;
  Gas(int n, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int i = 0; i < n; ++i) {
      types.push_back(i % 3 == 0 ? 0 : 1);
      const double f[3] = {u(rng), u(rng), u(rng)};
      for (int d = 0; d < 3; ++d) position.push_back(f[0] * box[d] + f[1] * box[3 + d] + f[2] * box[6 + d]);
    }
  }
};

TEST(MdRdf, IdealGasIsOneAndCoordinationMatchesBruteForce) {
  std::mt19937_64 rng(3);
  // rmax beyond half the shortest cell height: images count, the normalisation must still hold.
  const int natoms = 90;
  Gas first(natoms, rng);
  Rdf g(first.types, {"O", "H"}, 7.0, 14);
  std::vector<Gas> frames;
  for (int f = 0; f < 200; ++f) frames.emplace_back(natoms, rng);
  for (const Gas& gas : frames) g.sample(gas.position.data(), gas.box.data());
  // Each bin's g is a pair count over its ideal expectation; the count is (nearly) Poisson, so
  // the relative standard error is 1/sqrt(expected count).
  const double volume = 9.0 * 8.0 * 10.0;
  for (int32_t a : {0, 1, -1}) {
    for (int32_t b : {0, 1, -1}) {
      if ((a < 0) != (b < 0)) continue;
      const double na = a < 0 ? natoms : (a == 0 ? natoms / 3 : natoms - natoms / 3);
      const double nb = (b < 0 ? natoms : (b == 0 ? natoms / 3 : natoms - natoms / 3)) - (a == b ? 1 : 0);
      for (int64_t bin = 2; bin < 14; ++bin) {
        const double r0 = bin * 0.5, r1 = r0 + 0.5;
        const double expected = 200 * na * nb / volume * 4.0 / 3.0 * M_PI * (r1 * r1 * r1 - r0 * r0 * r0);
        EXPECT_NEAR(g.g(a, b, bin), 1.0, 5.0 / std::sqrt(expected)) << a << " " << b << " bin " << bin;
      }
    }
  }
  // Coordination number: b atoms within the bin's outer edge of an a atom, counted directly over
  // all images (cell heights 8-10 A: shifts -2..2 reach well beyond 7 A), over a few frames.
  frames.erase(frames.begin() + 10, frames.end());
  Rdf few(first.types, {"O", "H"}, 7.0, 14);
  for (const Gas& gas : frames) few.sample(gas.position.data(), gas.box.data());
  for (int32_t a : {0, 1}) {
    for (int32_t b : {0, 1}) {
      for (int64_t bin : {3, 9, 13}) {
        const double r = (bin + 1) * 0.5;
        double count = 0, centres = 0;
        for (const Gas& gas : frames) {
          for (int i = 0; i < natoms; ++i) {
            if (gas.types[i] != a) continue;
            centres += 1;
            for (int j = 0; j < natoms; ++j) {
              if (gas.types[j] != b) continue;
              for (int s0 = -2; s0 <= 2; ++s0)
                for (int s1 = -2; s1 <= 2; ++s1)
                  for (int s2 = -2; s2 <= 2; ++s2) {
                    if (i == j && s0 == 0 && s1 == 0 && s2 == 0) continue;
                    double d2 = 0;
                    for (int d = 0; d < 3; ++d) {
                      const double x = gas.position[3 * j + d] - gas.position[3 * i + d] + s0 * gas.box[d] +
                                       s1 * gas.box[3 + d] + s2 * gas.box[6 + d];
                      d2 += x * x;
                    }
                    if (d2 < r * r) count += 1;
                  }
            }
          }
        }
        EXPECT_NEAR(few.coordination(a, b, bin), count / centres, 1e-12) << a << " " << b << " bin " << bin;
      }
    }
  }
}

TEST(MdMsd, BallisticMotionGivesVSquaredTSquared) {
  // x_i(t) = x_i(0) + v_i t: MSD(t) = <|v|^2> t^2 exactly, for every time origin.
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0.0, 0.02);
  const int natoms = 30;
  std::vector<int32_t> types;
  std::vector<double> x0, v;
  for (int i = 0; i < natoms; ++i) {
    types.push_back(i % 2);
    for (int d = 0; d < 3; ++d) {
      x0.push_back(10 * normal(rng));
      v.push_back(normal(rng));
    }
  }
  const double interval = 2.5;
  Msd msd(types, {"O", "H"}, interval);
  for (int k = 0; k < 40; ++k) {
    std::vector<double> x = x0;
    for (std::size_t c = 0; c < x.size(); ++c) x[c] += v[c] * k * interval;
    msd.sample(x.data());
  }
  const MsdTable t = msd.compute();
  ASSERT_EQ(t.groups, (std::vector<std::string>{"O", "H", "all"}));
  for (std::size_t g = 0; g < 3; ++g) {
    double v2 = 0, n = 0;
    for (int i = 0; i < natoms; ++i) {
      if (g < 2 && types[i] != static_cast<int32_t>(g)) continue;
      v2 += v[3 * i] * v[3 * i] + v[3 * i + 1] * v[3 * i + 1] + v[3 * i + 2] * v[3 * i + 2];
      n += 1;
    }
    for (std::size_t k = 0; k < t.time.size(); ++k) {
      EXPECT_NEAR(t.time[k], k * interval, 1e-12);
      EXPECT_NEAR(t.msd[g][k], v2 / n * t.time[k] * t.time[k], 1e-10 * (1 + t.msd[g][k]));
    }
  }
}

TEST(MdMsd, BrownianMotionGivesTheDiffusionCoefficient) {
  // Independent Gaussian steps of variance 2 D dt per component: MSD = 6 D t. With 400 walkers
  // the fitted D has a relative standard error of a few percent; 15% is > 4 sigma.
  std::mt19937_64 rng(17);
  const double diffusion = 0.003, dt = 5.0;  // A^2/fs, fs
  std::normal_distribution<double> step(0.0, std::sqrt(2 * diffusion * dt));
  const int natoms = 400;
  std::vector<double> x(3 * natoms, 0.0);
  Msd msd(std::vector<int32_t>(natoms, 0), {"Ar"}, dt);
  for (int k = 0; k < 300; ++k) {
    msd.sample(x.data());
    for (double& c : x) c += step(rng);
  }
  const MsdTable t = msd.compute();
  EXPECT_NEAR(diffusion_coefficient(t.time, t.msd[0]) / diffusion, 1.0, 0.15);
  // And the fit on an exact line recovers its slope whatever the window.
  std::vector<double> line;
  for (double time : t.time) line.push_back(6 * diffusion * time + 0.7);
  EXPECT_NEAR(diffusion_coefficient(t.time, line), diffusion, 1e-12);
}

}  // namespace
}  // namespace atomforge::md
