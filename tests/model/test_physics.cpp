// Forces, virials and invariances of the energy model against independent references: central
// finite differences of the energy, homogeneous strain, rotated/translated/permuted/replicated
// frames, and a neighbour crossing the cut-off.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "model_test_util.hpp"

namespace atomforge::testing {
namespace {

// Fourth-order central difference: truncation O(h^4), so h can stay large against rounding.
template <typename F>
double derivative(F&& f, double h) {
  return (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h);
}

struct Case {
  std::string name, system;
  int64_t frame;
  std::vector<std::string> type_map;
  nlohmann::ordered_json descriptor;
  double roughness;  // scale of the weight matrices (see roughen)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

nlohmann::ordered_json se_e2_a(const std::vector<int64_t>& sel, double rcut, bool type_one_side = true) {
  return {{"type", "se_e2_a"}, {"sel", sel},          {"rcut", rcut},      {"rcut_smth", rcut - 2.0},
          {"neuron", {4, 8, 16}}, {"axis_neuron", 4}, {"resnet_dt", true}, {"type_one_side", type_one_side}};
}

std::vector<Case> cases() {
  const std::vector<std::string> chno = {"C", "H", "N", "O"};
  return {{"water", "water/data_0", 3, {"O", "H"}, se_e2_a({30, 60}, 4.5), 30.0},
          {"water_two_side", "water/data_0", 5, {"O", "H"}, se_e2_a({30, 60}, 4.5, false), 30.0},
          {"triclinic_Cu", "metals/Cu_mishin1/train/Cu32", 92, {"Cu"}, se_e2_a({140}, 6.0), 30.0},
          {"molecule", "mf/gfn2/train/CH3OH", 0, chno, se_e2_a({4, 8, 4, 4}, 5.0), 30.0},
          {"painn_water", "water/data_0", 3, {"O", "H"}, small_painn(3.5), 1.0},
          {"painn_triclinic_Cu", "metals/Cu_mishin1/train/Cu32", 92, {"Cu"}, small_painn(4.0), 1.0},
          {"painn_molecule", "mf/gfn2/train/CH3OH", 0, chno, small_painn(4.0), 1.0},
          {"dimenet_water", "water/data_0", 3, {"O", "H"}, small_dimenet(3.0), 1.0},
          {"dimenet_triclinic_Cu", "metals/Cu_mishin1/train/Cu32", 92, {"Cu"}, small_dimenet(3.0), 1.0},
          {"dimenet_molecule", "mf/gfn2/train/CH3OH", 0, chno, small_dimenet(4.0), 1.0}};
}

class Physics : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    frame_ = single_frame(c.system, c.frame);
    model_ = model_with(c.type_map, c.descriptor);
    // Realistic, non-trivial normalisation from the frame itself.
    model_->compute_statistics({frame_}, {1});
    roughen(*model_, c.roughness);
    ASSERT_EQ(model_->prepare(frame_, {0}).truncated_centres, 0) << "sel too small: the test needs every neighbour";
  }
  data::System frame_;
  std::unique_ptr<model::EnergyModel> model_;
};

TEST_P(Physics, ForcesAreMinusGradientOfEnergy) {
  const auto prediction = model_->evaluate(model_->prepare(frame_, {0}), false);
  const at::Tensor force = prediction.force.view({-1});
  const int64_t ncomp = std::min<int64_t>(3 * frame_.natoms(), 60);  // water: the first 20 atoms
  double max_error = 0, max_force = 0;
  for (int64_t k = 0; k < ncomp; ++k) {
    const double fd = -derivative(
        [&](double d) {
          data::System moved = frame_;
          moved.coord[k] += d;
          return energy_of(*model_, moved);
        },
        1e-3);
    max_error = std::max(max_error, std::abs(fd - force[k].item<double>()));
    max_force = std::max(max_force, std::abs(force[k].item<double>()));
  }
  EXPECT_GT(max_force, 0.05);
  EXPECT_LT(max_error / max_force, 1e-6) << "max abs error " << max_error << " max force " << max_force;
}

TEST_P(Physics, VirialIsMinusStrainDerivative) {
  if (!frame_.pbc) GTEST_SKIP() << "no cell to strain";
  const auto prediction = model_->evaluate(model_->prepare(frame_, {0}), false);
  double max_error = 0, max_virial = 0;
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      auto strained = [&](double e) {
        // r -> r (I + eps) for atoms and cell rows, eps = e at (a, b).
        data::System s = frame_;
        for (int64_t i = 0; i < s.natoms(); ++i) s.coord[3 * i + b] += e * frame_.coord[3 * i + a];
        for (int row = 0; row < 3; ++row) s.box[3 * row + b] += e * frame_.box[3 * row + a];
        return energy_of(*model_, s);
      };
      const double de_deps = derivative(strained, 1e-4);
      // W = -(dE/d eps)^T: W[b][a] = -dE/d eps[a][b].
      const double w = prediction.virial[0][3 * b + a].item<double>();
      max_error = std::max(max_error, std::abs(-de_deps - w));
      max_virial = std::max(max_virial, std::abs(w));
    }
  }
  EXPECT_GT(max_virial, 0.05);
  EXPECT_LT(max_error / max_virial, 1e-6) << "max abs error " << max_error << " max virial " << max_virial;
}

TEST_P(Physics, InvariantUnderRotationTranslationPermutation) {
  const double e0 = energy_of(*model_, frame_);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  // Random rotation from the QR decomposition of a Gaussian matrix.
  at::Tensor q = std::get<0>(at::linalg_qr(at::randn({3, 3}, at::kDouble)));
  if (at::det(q).item<double>() < 0) q.select(1, 0).neg_();
  const auto rot = q.contiguous();
  const double* r = rot.data_ptr<double>();
  data::System rotated = frame_;
  const double shift[3] = {normal(rng) * 3, normal(rng) * 3, normal(rng) * 3};
  auto transform = [&](const double* in, double* out, bool translate) {
    for (int d = 0; d < 3; ++d)
      out[d] = in[0] * r[0 * 3 + d] + in[1] * r[1 * 3 + d] + in[2] * r[2 * 3 + d] + (translate ? shift[d] : 0.0);
  };
  for (int64_t i = 0; i < frame_.natoms(); ++i) transform(&frame_.coord[3 * i], &rotated.coord[3 * i], true);
  for (int row = 0; row < 3; ++row) transform(&frame_.box[3 * row], &rotated.box[3 * row], false);
  EXPECT_NEAR(energy_of(*model_, rotated), e0, 1e-10 * std::abs(e0));
  // Forces rotate with the frame: F' = F R in the row-vector convention of `transform`.
  const auto f = model_->evaluate(model_->prepare(frame_, {0}), false).force[0];
  const auto f_rotated = model_->evaluate(model_->prepare(rotated, {0}), false).force[0];
  EXPECT_LT((f_rotated - at::matmul(f, rot)).abs().max().item<double>(), 1e-10 * f.abs().max().item<double>());

  std::vector<int64_t> perm(frame_.natoms());
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  data::System permuted = frame_;
  for (int64_t i = 0; i < frame_.natoms(); ++i) {
    permuted.types[i] = frame_.types[perm[i]];
    for (int d = 0; d < 3; ++d) permuted.coord[3 * i + d] = frame_.coord[3 * perm[i] + d];
  }
  EXPECT_NEAR(energy_of(*model_, permuted), e0, 1e-10 * std::abs(e0));
  // Forces follow the atoms.
  const auto f0 = model_->evaluate(model_->prepare(frame_, {0}), false).force[0];
  const auto fp = model_->evaluate(model_->prepare(permuted, {0}), false).force[0];
  const auto index = at::tensor(std::vector<int64_t>(perm.begin(), perm.end()), at::kLong);
  EXPECT_LT((fp - f0.index_select(0, index)).abs().max().item<double>(), 1e-10 * f0.abs().max().item<double>());
}

TEST_P(Physics, PeriodicReplicaHasTwiceTheEnergy) {
  if (!frame_.pbc) GTEST_SKIP() << "molecules have no periodic images";
  const double e0 = energy_of(*model_, frame_);
  data::System doubled = frame_;
  const int64_t n = frame_.natoms();
  doubled.types.insert(doubled.types.end(), frame_.types.begin(), frame_.types.end());
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) doubled.coord.push_back(frame_.coord[3 * i + d] + frame_.box[d]);
  for (int d = 0; d < 3; ++d) doubled.box[d] *= 2;
  // The sel must hold all neighbours in the replica too; it sees the same environments.
  ASSERT_EQ(model_->prepare(doubled, {0}).truncated_centres, 0);
  EXPECT_NEAR(energy_of(*model_, doubled), 2 * e0, 1e-10 * std::abs(2 * e0));
}

INSTANTIATE_TEST_SUITE_P(Frames, Physics, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Energy and forces are continuous (C2 switch or envelope) as one atom leaves the cut-off sphere
// of another.
class Smoothness : public ::testing::TestWithParam<std::string> {};

TEST_P(Smoothness, NeighbourCrossingTheCutoff) {
  const double rcut = 4.0;
  const std::string& kind = GetParam();
  auto model = kind == "se_e2_a" ? small_model({"O", "H"}, {8, 8}, rcut, {{"rcut_smth", 1.0}})
                                 : model_with({"O", "H"}, kind == "painn" ? small_painn(rcut) : small_dimenet(rcut));
  if (kind == "se_e2_a") roughen(*model, 30.0);
  data::System s;
  s.path = "dimer";
  s.type_map = {"O", "H"};
  s.types = {0, 1, 1};
  s.pbc = false;
  s.nframes = 1;
  s.box.assign(9, 0.0);
  // O at the origin, H at (0.96, 0, 0), a second H at (x, 0.3, 0) moving along x.
  auto at_x = [&](double x) {
    s.coord = {0, 0, 0, 0.96, 0, 0, x, 0.3, 0};
    return model->evaluate(model->prepare(s, {0}), false);
  };
  const double crossing_h = 0.96 + std::sqrt(rcut * rcut - 0.09);  // leaves the first H's sphere
  const double crossing_o = std::sqrt(rcut * rcut - 0.09);         // leaves O's sphere
  for (double x0 : {crossing_h, crossing_o}) {
    const double eps = 1e-6;
    const auto minus = at_x(x0 - eps), centre = at_x(x0), plus = at_x(x0 + eps);
    // A smooth E changes by -F dx across the crossing (up to eps^3); a jump would not.
    const double de = plus.energy.item<double>() - minus.energy.item<double>();
    EXPECT_LT(std::abs(de + 2 * eps * centre.force[0][2][0].item<double>()), 1e-12) << "x0 = " << x0;
    // Forces are continuous: across the crossing they change in proportion to the step (other
    // edges still bend them), where a jump would stay as the step shrinks.
    const double across = (plus.force - minus.force).abs().max().item<double>();
    const double across_tenth = (at_x(x0 + eps / 10).force - at_x(x0 - eps / 10).force).abs().max().item<double>();
    EXPECT_LT(across_tenth, 0.2 * across + 1e-11) << "x0 = " << x0;
    EXPECT_LT(across, 1e-4) << "x0 = " << x0;
    // Not trivially so: well inside the switching region, the moving atom feels a force.
    EXPECT_GT(at_x(x0 - 1.0).force[0][2].abs().max().item<double>(), 1e-4) << "x0 = " << x0;
  }
  // Beyond every cut-off the atom no longer interacts: its force vanishes exactly.
  EXPECT_EQ(at_x(crossing_h + 0.5).force[0][2].abs().max().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Descriptors, Smoothness, ::testing::Values("se_e2_a", "painn", "dimenet"));

// precision "float32" runs the same model in single precision: same energy and forces to
// single-precision accuracy.
TEST(Precision, Float32AgreesWithFloat64) {
  const data::System frame = single_frame("water/data_0", 0);
  auto m64 = small_model({"O", "H"}, {30, 60}, 4.5, {}, "float64");
  auto m32 = small_model({"O", "H"}, {30, 60}, 4.5, {}, "float32");
  for (auto* m : {m64.get(), m32.get()}) {
    m->compute_statistics({frame}, {1});
    roughen(*m, 30.0);
  }
  const auto p64 = m64->evaluate(m64->prepare(frame, {0}), false);
  const auto p32 = m32->evaluate(m32->prepare(frame, {0}), false);
  EXPECT_EQ(p32.energy.scalar_type(), at::kFloat);
  EXPECT_EQ(p32.force.scalar_type(), at::kFloat);
  const double e = p64.energy.item<double>();
  EXPECT_NEAR(p32.energy.item<double>(), e, 1e-5 * std::abs(e));
  const double fmax = p64.force.abs().max().item<double>();
  EXPECT_GT(fmax, 0.05);
  EXPECT_LT((p32.force.to(at::kDouble) - p64.force).abs().max().item<double>(), 1e-4 * fmax);
  EXPECT_GT((p32.force.to(at::kDouble) - p64.force).abs().max().item<double>(), 0.0) << "float32 really ran";
}

}  // namespace
}  // namespace atomforge::testing
