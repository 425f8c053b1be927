// Versions 2 and 3 of the C API: per-atom virials (af_model_compute_atomic) against the global
// virial, a strain finite difference and a finite-difference construction of the documented
// split; domains with ghost atoms (af_model_compute_local) and, for painn, with ghost features
// exchanged between layers (af_model_compute_exchange) against the periodic evaluation.
#include <array>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "../frame_test_util.hpp"
#include "api_test_util.hpp"

namespace atomforge::testing {
namespace {

const std::vector<std::string> kTypeMap = {"O", "H", "C"};  // the test models'

struct Atomic {
  double energy = 0;
  std::vector<double> force, virial, atom_energy, atom_virial;
};

// Room for the outputs of a domain of `nall` atoms, `nlocal` of them owned.
Atomic domain_outputs(int nall, int nlocal) {
  Atomic a;
  a.force.resize(3 * nall);
  a.virial.resize(9);
  a.atom_energy.resize(nlocal);
  a.atom_virial.resize(9 * nall);
  return a;
}

// A domain's outputs against the periodic evaluation `ref`, once the ghosts' forces and atom
// virials are folded onto their owners (as LAMMPS' reverse communication does).
void expect_folded_domain_matches(Atomic domain, const std::vector<int>& owner, int nlocal, const Atomic& ref) {
  expect_close(domain.energy, ref.energy, "energy");
  expect_close_each(domain.virial, ref.virial, 9, "virial");
  expect_close_each(domain.atom_energy, ref.atom_energy, nlocal, "atom energy");
  for (int g = 0; g < static_cast<int>(owner.size()); ++g) {
    for (int c = 0; c < 3; ++c) domain.force[3 * owner[g] + c] += domain.force[3 * (nlocal + g) + c];
    for (int c = 0; c < 9; ++c) domain.atom_virial[9 * owner[g] + c] += domain.atom_virial[9 * (nlocal + g) + c];
  }
  expect_close_each(domain.force, ref.force, 3 * nlocal, "force");
  expect_close_each(domain.atom_virial, ref.atom_virial, 9 * nlocal, "atom virial");
}

Atomic compute_atomic(af_model* model, const Frame& f) {
  Atomic a;
  a.force.resize(3 * f.natoms);
  a.virial.resize(9);
  a.atom_energy.resize(f.natoms);
  a.atom_virial.resize(9 * f.natoms);
  EXPECT_EQ(af_model_compute_atomic(model, f.natoms, f.coord.data(), f.types.data(), f.box.empty() ? nullptr : f.box.data(),
                                    &a.energy, a.force.data(), a.virial.data(), a.atom_energy.data(),
                                    a.atom_virial.data()),
            AF_OK)
      << af_model_error(model);
  return a;
}

// The suite's model, loaded through the C API for each test.
template <nlohmann::ordered_json (*make_input)()>
class LoadedModelTest : public TrainedModelTest<make_input> {
 protected:
  void SetUp() override {
    TrainedModelTest<make_input>::SetUp();
    if (this->IsSkipped()) return;
    handle_.reset(af_model_load(this->checkpoint_.c_str(), nullptr));
    ASSERT_TRUE(af_model_ok(handle_.get())) << af_model_error(handle_.get());
  }

  Handle handle_;
};

using CApiAtomic = LoadedModelTest<tiny_model_input>;

TEST_F(CApiAtomic, AtomVirialsSumToTheStrainDerivative) {
  const Frame water = load_frame(bundled("water/data_3"), 1, kTypeMap);
  const Atomic a = compute_atomic(handle_.get(), water);
  // Same numbers as version 1's function.
  double energy = 0;
  std::vector<double> force(3 * water.natoms), virial(9);
  ASSERT_EQ(af_model_compute(handle_.get(), water.natoms, water.coord.data(), water.types.data(), water.box.data(),
                             &energy, force.data(), virial.data(), nullptr),
            AF_OK);
  EXPECT_EQ(energy, a.energy);
  EXPECT_EQ(force, a.force);
  EXPECT_EQ(virial, a.virial);

  for (int c = 0; c < 9; ++c) {
    double sum = 0;
    for (int i = 0; i < water.natoms; ++i) sum += a.atom_virial[9 * i + c];
    expect_close(sum, a.virial[c], "sum of atom virials, component " + std::to_string(c));
  }
  // W[a][b] = -dE/d(eps_ab) for the homogeneous strain x_a -> x_a + eps_ab x_b of atoms and box.
  // Fourth-order central difference: the energy (~3e4 eV) carries ~1e-10 eV of rounding, so the
  // step must stay large and the truncation error small.
  const double h = 1e-3;
  for (int ca = 0; ca < 3; ++ca)
    for (int cb = 0; cb < 3; ++cb) {
      double e[4];
      for (int s = 0; s < 4; ++s) {
        Frame strained = water;
        const double eps = std::vector<double>{2 * h, h, -h, -2 * h}[s];
        for (int i = 0; i < water.natoms; ++i) strained.coord[3 * i + ca] += eps * water.coord[3 * i + cb];
        for (int row = 0; row < 3; ++row) strained.box[3 * row + ca] += eps * water.box[3 * row + cb];
        ASSERT_EQ(af_model_compute(handle_.get(), water.natoms, strained.coord.data(), water.types.data(),
                                   strained.box.data(), &e[s], nullptr, nullptr, nullptr),
                  AF_OK);
      }
      const double fd = -(-e[0] + 8 * e[1] - 8 * e[2] + e[3]) / (12 * h);
      EXPECT_NEAR(a.virial[3 * ca + cb], fd, 1e-6 * std::max(1.0, std::abs(fd))) << "virial " << ca << cb;
    }
}

// The split rebuilt from the atomic energies alone: atom i's energy depends on its edges r_ij
// only, so the edge gradient dE/dr_ij is de_i/dx_j, here by finite differences. With
// W_edge = -de_i/dx_j (x) (x_j - x_i) (an isolated molecule: no images), atom k gets half of
// each edge it is an end of.
TEST_F(CApiAtomic, AtomVirialIsHalfOfEachEdgeTerm) {
  const Frame mol = load_frame(bundled("mf/gfn1/valid/CH3OH"), 0, kTypeMap);
  ASSERT_TRUE(mol.box.empty());
  const int n = mol.natoms;
  const Atomic a = compute_atomic(handle_.get(), mol);

  // jac[(i * n + k) * 3 + c] = d e_i / d x_kc
  const double h = 1e-5;
  std::vector<double> jac(static_cast<std::size_t>(n * n * 3));
  for (int k = 0; k < n; ++k)
    for (int c = 0; c < 3; ++c) {
      std::vector<double> ae[2] = {std::vector<double>(n), std::vector<double>(n)};
      for (int s = 0; s < 2; ++s) {
        Frame moved = mol;
        moved.coord[3 * k + c] += s == 0 ? h : -h;
        ASSERT_EQ(af_model_compute(handle_.get(), n, moved.coord.data(), mol.types.data(), nullptr, nullptr, nullptr,
                                   nullptr, ae[s].data()),
                  AF_OK);
      }
      for (int i = 0; i < n; ++i) jac[(i * n + k) * 3 + c] = (ae[0][i] - ae[1][i]) / (2 * h);
    }
  const double scale = max_abs(a.atom_virial);
  ASSERT_GT(scale, 0.0);
  for (int k = 0; k < n; ++k)
    for (int ca = 0; ca < 3; ++ca)
      for (int cb = 0; cb < 3; ++cb) {
        double w = 0;
        for (int j = 0; j < n; ++j) {
          if (j == k) continue;
          // edge (k, j): centre k; edge (j, k): centre j, neighbour k
          w -= 0.5 * jac[(k * n + j) * 3 + ca] * (mol.coord[3 * j + cb] - mol.coord[3 * k + cb]);
          w -= 0.5 * jac[(j * n + k) * 3 + ca] * (mol.coord[3 * k + cb] - mol.coord[3 * j + cb]);
        }
        EXPECT_NEAR(a.atom_virial[9 * k + 3 * ca + cb], w, 1e-6 * scale) << "atom " << k << " component " << ca << cb;
      }
}

// A periodic frame as LAMMPS hands it over: the atoms wrapped into the box, then as ghosts every
// periodic image within `depth` of some atom. Returns the owner of each ghost.
std::vector<int> add_ghosts(Frame& f, double depth) {
  const int n = f.natoms;
  wrap_into_box(f);  // the box of these tests is orthorhombic
  std::vector<int> owner;
  for (int sx = -1; sx <= 1; ++sx)
    for (int sy = -1; sy <= 1; ++sy)
      for (int sz = -1; sz <= 1; ++sz) {
        if (sx == 0 && sy == 0 && sz == 0) continue;
        for (int j = 0; j < n; ++j) {
          double image[3];
          for (int c = 0; c < 3; ++c)
            image[c] = f.coord[3 * j + c] + sx * f.box[c] + sy * f.box[3 + c] + sz * f.box[6 + c];
          bool near = false;
          for (int i = 0; i < n && !near; ++i) {
            double r2 = 0;
            for (int c = 0; c < 3; ++c) r2 += (image[c] - f.coord[3 * i + c]) * (image[c] - f.coord[3 * i + c]);
            near = r2 < depth * depth;
          }
          if (!near) continue;
          f.coord.insert(f.coord.end(), image, image + 3);
          f.types.push_back(f.types[j]);
          owner.push_back(j);
        }
      }
  return owner;
}

TEST_F(CApiAtomic, GhostDomainMatchesPeriodicEvaluation) {
  const Frame water = load_frame(bundled("water/data_3"), 0, kTypeMap);
  ASSERT_EQ(water.box[1], 0.0);  // add_ghosts wraps an orthorhombic box
  const Atomic ref = compute_atomic(handle_.get(), water);
  const double field = af_model_receptive_field(handle_.get());
  ASSERT_GT(field, 0.0);

  // Ghosts one Angstrom deeper than needed (as LAMMPS' skin) must change nothing.
  Frame domain = water;
  const std::vector<int> owner = add_ghosts(domain, field + 1.0);
  const int nlocal = water.natoms, nall = nlocal + static_cast<int>(owner.size());
  ASSERT_GT(nall, 2 * nlocal);
  Atomic out = domain_outputs(nall, nlocal);
  ASSERT_EQ(af_model_compute_local(handle_.get(), nall, nlocal, domain.coord.data(), domain.types.data(), &out.energy,
                                   out.force.data(), out.virial.data(), out.atom_energy.data(),
                                   out.atom_virial.data()),
            AF_OK)
      << af_model_error(handle_.get());
  expect_folded_domain_matches(out, owner, nlocal, ref);

  // Ghosts only within the receptive field suffice; too shallow ghosts change the energy.
  Frame minimal = water, shallow = water;
  const int nall_minimal = nlocal + static_cast<int>(add_ghosts(minimal, field).size());
  const int nall_shallow = nlocal + static_cast<int>(add_ghosts(shallow, 0.5 * field).size());
  double e_minimal = 0, e_shallow = 0;
  ASSERT_EQ(af_model_compute_local(handle_.get(), nall_minimal, nlocal, minimal.coord.data(), minimal.types.data(),
                                   &e_minimal, nullptr, nullptr, nullptr, nullptr),
            AF_OK);
  ASSERT_EQ(af_model_compute_local(handle_.get(), nall_shallow, nlocal, shallow.coord.data(), shallow.types.data(),
                                   &e_shallow, nullptr, nullptr, nullptr, nullptr),
            AF_OK);
  expect_close(e_minimal, ref.energy, "energy with ghosts to the receptive field");
  EXPECT_GT(std::abs(e_shallow - ref.energy), 1e-6);
}

TEST_F(CApiAtomic, LocalDomainEdgeCasesAndErrors) {
  const double coord[9] = {0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0};
  const int types[3] = {0, 1, 1};
  // A domain owning no atom: zero energy and forces, the ghosts untouched by the model.
  double energy = 1.0;
  std::vector<double> force(9, 1.0), atom_virial(27, 1.0);
  ASSERT_EQ(af_model_compute_local(handle_.get(), 3, 0, coord, types, &energy, force.data(), nullptr, nullptr,
                                   atom_virial.data()),
            AF_OK);
  EXPECT_EQ(energy, 0.0);
  EXPECT_EQ(force, std::vector<double>(9, 0.0));
  EXPECT_EQ(atom_virial, std::vector<double>(27, 0.0));
  ASSERT_EQ(af_model_compute_local(handle_.get(), 0, 0, nullptr, nullptr, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_OK);

  // All atoms owned and no ghost: the isolated molecule.
  double e_all = 0, e_isolated = 0;
  ASSERT_EQ(af_model_compute_local(handle_.get(), 3, 3, coord, types, &e_all, nullptr, nullptr, nullptr, nullptr),
            AF_OK);
  ASSERT_EQ(af_model_compute(handle_.get(), 3, coord, types, nullptr, &e_isolated, nullptr, nullptr, nullptr), AF_OK);
  expect_close(e_all, e_isolated, "no ghosts");
  // One owned atom: its own energy only, forces on all three.
  double e_one = 0, ae_isolated[3];
  std::vector<double> f_one(9, 0.0);
  ASSERT_EQ(af_model_compute(handle_.get(), 3, coord, types, nullptr, nullptr, nullptr, nullptr, ae_isolated), AF_OK);
  ASSERT_EQ(af_model_compute_local(handle_.get(), 3, 1, coord, types, &e_one, f_one.data(), nullptr, nullptr, nullptr),
            AF_OK);
  expect_close(e_one, ae_isolated[0], "energy of the one owned atom");
  for (int c = 0; c < 3; ++c) expect_close(f_one[c] + f_one[3 + c] + f_one[6 + c], 0.0, "net force");

  energy = 12345.0;
  EXPECT_EQ(af_model_compute_local(handle_.get(), 2, 3, coord, types, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_NE(std::string(af_model_error(handle_.get())).find("nlocal"), std::string::npos);
  EXPECT_EQ(af_model_compute_local(handle_.get(), 3, -1, coord, types, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  const int bad_types[3] = {0, 1, 7};  // a ghost's type is checked too
  EXPECT_EQ(af_model_compute_local(handle_.get(), 3, 1, coord, bad_types, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_EQ(af_model_compute_local(handle_.get(), 3, 1, nullptr, types, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_EQ(energy, 12345.0);
  EXPECT_EQ(af_model_compute_local(nullptr, 3, 1, coord, types, &energy, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_NULL_HANDLE);
  EXPECT_EQ(af_model_receptive_field(nullptr), 0.0);
}

// A painn model (3 layers: two exchanges per evaluation), trained 5 steps on water.
nlohmann::ordered_json painn_input() {
  auto input = small_water_input();
  input["model"]["descriptor"] = small_painn(3.5);
  input["model"]["descriptor"]["layers"] = 3;
  input["model"]["descriptor"]["seed"] = 1;
  input["training"]["numb_steps"] = 5;
  return input;
}

using CApiExchange = LoadedModelTest<painn_input>;

// One domain whose ghosts are periodic images of its own atoms: the exchange copies owners' rows
// to their ghosts and adds ghosts' rows to their owners, as LAMMPS' communication does.
struct ImageExchange {
  std::vector<int> owner;  // of each ghost
  int nlocal = 0;
  std::vector<int> directions;  // the calls, in order
  int fail_on_call = -1;

  static int call(void* self, int direction, int nall, int width, double* rows) {
    auto* e = static_cast<ImageExchange*>(self);
    if (static_cast<int>(e->directions.size()) == e->fail_on_call) return 1;
    e->directions.push_back(direction);
    EXPECT_EQ(nall, e->nlocal + static_cast<int>(e->owner.size()));
    for (std::size_t g = 0; g < e->owner.size(); ++g) {
      double* ghost = rows + (e->nlocal + g) * width;
      double* own = rows + static_cast<std::size_t>(e->owner[g]) * width;
      for (int k = 0; k < width; ++k) {
        if (direction == AF_GHOSTS_FORWARD) ghost[k] = own[k];
        else own[k] += ghost[k];
      }
    }
    return 0;
  }
};

TEST_F(CApiExchange, ExchangeDomainMatchesPeriodicEvaluation) {
  EXPECT_EQ(af_model_ghost_exchange_width(handle_.get()), 4 * 8);  // s and v of 8 features
  Frame water = load_frame(bundled("water/data_3"), 0, kTypeMap);
  for (int& t : water.types) ASSERT_LT(t, 2);  // O and H only
  const Atomic ref = compute_atomic(handle_.get(), water);
  const double cutoff = af_model_cutoff(handle_.get());
  ASSERT_GT(af_model_receptive_field(handle_.get()), 2.5 * cutoff);

  // Ghosts one cut-off (plus a skin) deep: a quarter of the receptive field.
  Frame domain = water;
  ImageExchange exchange;
  exchange.owner = add_ghosts(domain, cutoff + 1.0);
  const int nlocal = water.natoms, nall = nlocal + static_cast<int>(exchange.owner.size());
  exchange.nlocal = nlocal;
  Atomic out = domain_outputs(nall, nlocal);
  ASSERT_EQ(af_model_compute_exchange(handle_.get(), nall, nlocal, domain.coord.data(), domain.types.data(),
                                      &ImageExchange::call, &exchange, &out.energy, out.force.data(),
                                      out.virial.data(), out.atom_energy.data(), out.atom_virial.data()),
            AF_OK)
      << af_model_error(handle_.get());
  // Before layers 2 and 3, then their gradients in reverse.
  EXPECT_EQ(exchange.directions,
            (std::vector<int>{AF_GHOSTS_FORWARD, AF_GHOSTS_FORWARD, AF_GHOSTS_REVERSE, AF_GHOSTS_REVERSE}));
  expect_folded_domain_matches(out, exchange.owner, nlocal, ref);

  // Without the exchange these ghosts are too shallow.
  double e_local = 0;
  ASSERT_EQ(af_model_compute_local(handle_.get(), nall, nlocal, domain.coord.data(), domain.types.data(), &e_local,
                                   nullptr, nullptr, nullptr, nullptr),
            AF_OK);
  EXPECT_GT(std::abs(e_local - ref.energy), 1e-6);
}

TEST_F(CApiExchange, EmptyDomainsExchangeAndErrors) {
  const double coord[9] = {0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0};
  const int types[3] = {0, 1, 1};
  // A domain owning no atom, with or without ghosts, makes the same exchanges as one with atoms.
  const std::vector<int> expected = {AF_GHOSTS_FORWARD, AF_GHOSTS_FORWARD, AF_GHOSTS_REVERSE, AF_GHOSTS_REVERSE};
  for (const int nall : {3, 0}) {
    ImageExchange exchange;  // records the calls; the ghosts' owners are elsewhere (nothing to copy)
    exchange.nlocal = nall;
    double energy = 1.0;
    std::vector<double> force(3 * nall, 1.0);
    ASSERT_EQ(af_model_compute_exchange(handle_.get(), nall, 0, nall ? coord : nullptr, nall ? types : nullptr,
                                        &ImageExchange::call, &exchange, &energy, force.data(), nullptr, nullptr,
                                        nullptr),
              AF_OK)
        << af_model_error(handle_.get());
    EXPECT_EQ(exchange.directions, expected) << nall << " ghosts";
    EXPECT_EQ(energy, 0.0);
    EXPECT_EQ(force, std::vector<double>(3 * nall, 0.0));
  }

  double energy = 12345.0;
  ImageExchange failing;
  failing.nlocal = 3;
  failing.fail_on_call = 1;
  EXPECT_EQ(af_model_compute_exchange(handle_.get(), 3, 3, coord, types, &ImageExchange::call, &failing, &energy,
                                      nullptr, nullptr, nullptr, nullptr),
            AF_ERR_COMPUTE);
  EXPECT_NE(std::string(af_model_error(handle_.get())).find("ghost exchange callback failed"), std::string::npos)
      << af_model_error(handle_.get());
  EXPECT_EQ(af_model_compute_exchange(handle_.get(), 3, 3, coord, types, nullptr, nullptr, &energy, nullptr, nullptr,
                                      nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_EQ(af_model_compute_exchange(handle_.get(), 2, 3, coord, types, &ImageExchange::call, &failing, &energy,
                                      nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_EQ(energy, 12345.0);
  EXPECT_EQ(af_model_compute_exchange(nullptr, 3, 3, coord, types, &ImageExchange::call, &failing, &energy, nullptr,
                                      nullptr, nullptr, nullptr),
            AF_ERR_NULL_HANDLE);
  EXPECT_EQ(af_model_ghost_exchange_width(nullptr), 0);
}

// se_e2_a has no node features to exchange: its ghosts need only the cut-off anyway.
TEST_F(CApiAtomic, OneHopModelsHaveNoGhostExchange) {
  EXPECT_EQ(af_model_ghost_exchange_width(handle_.get()), 0);
  const double coord[9] = {0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0};
  const int types[3] = {0, 1, 1};
  double energy = 0;
  ImageExchange exchange;
  exchange.nlocal = 3;
  EXPECT_EQ(af_model_compute_exchange(handle_.get(), 3, 3, coord, types, &ImageExchange::call, &exchange, &energy,
                                      nullptr, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_NE(std::string(af_model_error(handle_.get())).find("af_model_compute_local"), std::string::npos);
  EXPECT_TRUE(exchange.directions.empty());
}

}  // namespace
}  // namespace atomforge::testing
