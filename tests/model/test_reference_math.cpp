// The batched tensor implementation of se_e2_a + energy fitting against a plain-loop
// re-implementation written from ../shared/docs/deepmd-conventions.md: brute-force neighbours
// over periodic images, per-type nearest-first sel blocks with zero padding, switch function,
// normalisation, embedding nets with DeePMD-kit's skip rules, T = R~^T G / nnei,
// D = T^T T[:, :axis], per-type fitting nets and out_bias.
#include <algorithm>
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "model_test_util.hpp"
#include "se_e2_a_reference.hpp"

namespace atomforge::testing {
namespace {

void expect_matches_reference(const std::string& system, int64_t frame, const std::vector<std::string>& type_map,
                              const std::vector<int64_t>& sel, double rcut, bool type_one_side,
                              bool per_slot_statistics = false) {
  const data::System s = single_frame(system, frame);
  auto model = small_model(type_map, sel, rcut, {{"type_one_side", type_one_side}});
  model->compute_statistics({s}, {1});
  model->fit_out_bias({data::read_deepmd_system(bundled(system))});
  if (per_slot_statistics) {
    // Statistics computed elsewhere (an imported model) may differ from slot to slot and have
    // angular means: padding then contributes differently in every slot.
    at::Generator generator = at::detail::createCPUGenerator(7);
    for (const auto& [name, tensor] : model->parameters().buffers()) {
      if (name == "descriptor.davg") *tensor = at::normal(0.0, 0.3, tensor->sizes(), generator, tensor->options());
      if (name == "descriptor.dstd") *tensor = at::rand(tensor->sizes(), generator, tensor->options()) + 0.5;
    }
  }
  Weights w;
  for (const auto& [name, tensor] : model->parameters().parameters()) w.by_name[name] = tensor->detach();
  for (const auto& [name, tensor] : model->parameters().buffers()) w.by_name[name] = tensor->detach();
  const double expected = reference_energy(s, w, sel, rcut, rcut - 2.0, 4, type_one_side);
  const double got = energy_of(*model, s);
  EXPECT_NEAR(got, expected, 1e-12 * std::abs(expected)) << system;
}

TEST(ReferenceMath, WaterTypeOneSide) { expect_matches_reference("water/data_0", 1, {"O", "H"}, {12, 24}, 3.5, true); }
// Small sel: some neighbours are cut off, which the nearest-first rule decides.
TEST(ReferenceMath, WaterTwoSidedTruncated) { expect_matches_reference("water/data_0", 2, {"O", "H"}, {4, 8}, 3.5, false); }
TEST(ReferenceMath, WaterPerSlotStatistics) {
  expect_matches_reference("water/data_0", 1, {"O", "H"}, {12, 24}, 3.5, true, true);
  expect_matches_reference("water/data_0", 2, {"O", "H"}, {4, 8}, 3.5, false, true);
}
TEST(ReferenceMath, TriclinicCopperManyImages) {
  expect_matches_reference("metals/Cu_mishin1/train/Cu32", 92, {"Cu"}, {60}, 4.5, true);
}
TEST(ReferenceMath, MoleculeWithAbsentType) {
  expect_matches_reference("mf/gfn2/train/CH3OH", 3, {"C", "H", "N", "O"}, {3, 6, 2, 3}, 4.0, true);
}

}  // namespace
}  // namespace atomforge::testing
