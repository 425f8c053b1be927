// Inference a block of centres at a time (model/centre_blocks) against the whole input at once:
// the same energies, atomic energies, forces, virials and atomic virials, for periodic frames,
// batches of frames, domains with ghost atoms and centres without neighbours; and the block plan
// itself (contiguous, covering, within the edge budget).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/centre_blocks.hpp"
#include "model_test_util.hpp"

namespace atomforge::model {
namespace {

using testing::roughen;
using testing::single_frame;
using testing::small_model;
using testing::values;

void expect_near_all(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const auto g = values(got), w = values(want);
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (std::size_t k = 0; k < w.size(); ++k) ASSERT_NEAR(g[k], w[k], 1e-12 * std::max(scale, 1.0)) << what << " " << k;
}

// Evaluates `input` whole (no blocks) and in blocks of at most `edges` edges; both must agree.
void expect_blocks_agree(EnergyModel& m, const ModelInput& input, int64_t edges) {
  m.set_inference_block_edges(0);
  const Prediction whole = m.evaluate(input, false);
  m.set_inference_block_edges(edges);
  ASSERT_GT(plan_centre_blocks(input, edges).size(), 2u) << "the input must need several blocks";
  const Prediction blocks = m.evaluate(input, false);
  expect_near_all(blocks.energy, whole.energy, "energy");
  expect_near_all(blocks.atom_energy, whole.atom_energy, "atom_energy");
  expect_near_all(blocks.force, whole.force, "force");
  expect_near_all(blocks.virial, whole.virial, "virial");
  expect_near_all(blocks.atom_virial, whole.atom_virial, "atom_virial");
}

std::unique_ptr<EnergyModel> water_model() {
  auto m = small_model({"O", "H"}, {30, 60}, 4.5, {{"type_one_side", false}});
  roughen(*m, 3.0);
  return m;
}

TEST(CentreBlocks, PeriodicFrameInBlocksEqualsWhole) {
  auto m = water_model();
  const data::System frame = single_frame("water/data_0", 0);
  const ModelInput input = m->prepare(frame, {0});
  expect_blocks_agree(*m, input, 1000);
  // A budget below one centre's edges: every block is a single centre.
  expect_blocks_agree(*m, input, 5);
}

TEST(CentreBlocks, BatchOfFramesInBlocksEqualsWhole) {
  auto m = water_model();
  const data::System system = data::read_deepmd_system(testing::bundled("water/data_0"));
  expect_blocks_agree(*m, m->prepare(system, {0, 1, 2}), 3000);
}

TEST(CentreBlocks, DomainWithGhostsAndLoneAtomsInBlocksEqualsWhole) {
  auto m = water_model();
  const data::System frame = single_frame("water/data_0", 0);
  // The first 150 atoms are owned, the rest ghosts (a LAMMPS domain); then owned atoms far from
  // everything, whose blocks have no edges at all, are moved to the middle of the list.
  std::vector<double> coord = frame.coord;
  std::vector<int32_t> types = frame.types;
  const int64_t nlocal = 150;
  for (int k = 0; k < 3; ++k) {
    const double far[3] = {100.0 + 20 * k, -50.0, 30.0};
    coord.insert(coord.begin() + 3 * (60 + k), far, far + 3);
    types.insert(types.begin() + 60 + k, k % 2);
  }
  const ModelInput input = m->prepare_local(coord.data(), nlocal + 3, types);
  ASSERT_GT(input.nghost, 0);
  expect_blocks_agree(*m, input, 700);
  expect_blocks_agree(*m, input, 1);
}

TEST(CentreBlocks, PlanCoversEveryCentreOnceWithinTheBudget) {
  auto m = water_model();
  const data::System system = data::read_deepmd_system(testing::bundled("water/data_0"));
  const ModelInput input = m->prepare(system, {0, 1});
  const int64_t edges = input.edge_vec.size(0);
  const auto centre = values(input.edge_center);
  for (const int64_t budget : {int64_t{1}, int64_t{100}, int64_t{4000}, edges - 1}) {
    const auto blocks = plan_centre_blocks(input, budget);
    int64_t next_centre = 0, next_edge = 0;
    for (const CentreBlock& b : blocks) {
      EXPECT_EQ(b.begin, next_centre);
      EXPECT_EQ(b.first_edge, next_edge);
      EXPECT_GT(b.end, b.begin);
      // Within the budget unless a single centre has more edges than it.
      if (b.end - b.begin > 1) EXPECT_LE(b.end_edge - b.first_edge, budget);
      for (int64_t e = b.first_edge; e < b.end_edge; ++e) {
        ASSERT_GE(centre[e], b.begin);
        ASSERT_LT(centre[e], b.end);
      }
      next_centre = b.end;
      next_edge = b.end_edge;
    }
    EXPECT_EQ(next_centre, input.natoms());
    EXPECT_EQ(next_edge, edges);
  }
  EXPECT_EQ(plan_centre_blocks(input, 0).size(), 1u);
  EXPECT_EQ(plan_centre_blocks(input, edges).size(), 1u);
}

TEST(CentreBlocks, MessagePassingIsNeverSplit) {
  // PaiNN's atoms see beyond their own edges: its evaluation must ignore the block budget.
  auto m = testing::model_with({"O", "H"}, {{"type", "painn"}, {"rcut", 4.0}, {"layers", 2}, {"features", 8}});
  const data::System frame = single_frame("water/data_0", 0);
  const ModelInput input = m->prepare(frame, {0});
  m->set_inference_block_edges(0);
  const Prediction whole = m->evaluate(input, false);
  m->set_inference_block_edges(100);
  const Prediction small = m->evaluate(input, false);
  expect_near_all(small.energy, whole.energy, "energy");
  expect_near_all(small.force, whole.force, "force");
}

}  // namespace
}  // namespace atomforge::model
