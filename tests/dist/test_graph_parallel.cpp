// Graph parallelism: one graph's edges (painn) or triplets (dimenet) split over 2 and 3 ranks
// give the energy, forces, virial and every parameter gradient of one process, on every rank;
// training with it gives one process's parameters, alone and in a data x graph grid.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "multi_process.hpp"

namespace atomforge {
namespace {

using namespace testing;

struct Case {
  std::string trunk, frame;
};

class GraphParallelEvaluation : public ::testing::TestWithParam<Case> {};

TEST_P(GraphParallelEvaluation, EveryRankEqualsOneProcess) {
  TempDir dir;
  const std::string args = GetParam().trunk + " " + GetParam().frame + " ";
  const Result one = run_shell(std::string(GRAPH_PARALLEL_WORKER) + " " + args + (dir / "one"));
  ASSERT_EQ(one.code, 0) << one.output;
  const TensorFile reference = load_tensor_file(dir / "one.0");
  EXPECT_GT(reference.blobs.size(), 20u) << "energy, forces, virial and the parameter gradients";
  for (int ranks : {2, 3}) {
    TempDir run_dir;
    const Result split = run_ranks(run_dir, ranks, args + (run_dir / "split"), GRAPH_PARALLEL_WORKER);
    ASSERT_EQ(split.code, 0) << split.output;
    for (int r = 0; r < ranks; ++r)
      EXPECT_LT(max_relative_difference(dir / "one.0", run_dir / fmt::format("split.{}", r)), 1e-10)
          << ranks << " ranks, rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(TrunksAndFrames, GraphParallelEvaluation,
                         ::testing::Values(Case{"painn", "water"}, Case{"painn", "copper"}, Case{"dimenet", "water"},
                                           Case{"dimenet", "copper"}),
                         [](const auto& info) { return info.param.trunk + "_" + info.param.frame; });

nlohmann::ordered_json painn_water(int batch_size, int graph) {
  auto input = small_water_input();
  input["model"]["descriptor"] = small_painn(4.0);
  input["training"]["training_data"]["batch_size"] = batch_size;
  input["training"]["validation_data"]["batch_size"] = batch_size;
  input["training"]["validation_data"]["numb_btch"] = 1;
  input["training"]["numb_steps"] = 4;
  input["training"]["disp_freq"] = 2;
  input["training"]["save_freq"] = 4;
  input["training"]["parallel"]["graph"] = graph;
  return input;
}

// Two ranks on one graph train as one process; four ranks as 2 data shares x 2 graph ranks
// train as one process with twice the batch.
TEST(GraphParallelTraining, GraphAndDataByGraphGridsEqualOneProcess) {
  TempDir dir;
  write_text(dir / "gp2.json", painn_water(1, 2).dump());
  const Result one = train(dir, painn_water(1, 1), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result one_b2 = train(dir, painn_water(2, 1), "one_b2");
  ASSERT_EQ(one_b2.code, 0) << one_b2.output;

  TempDir gp_dir;
  const Result gp = run_ranks(gp_dir, 2, "train " + (dir / "gp2.json") + " -o " + (dir / "gp2"));
  ASSERT_EQ(gp.code, 0) << gp.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-4.pt", dir / "gp2/model.ckpt-4.pt"), 1e-10);
  expect_same_lcurve(dir / "one/lcurve.out", dir / "gp2/lcurve.out");

  TempDir grid_dir;
  const Result grid = run_ranks(grid_dir, 4, "train " + (dir / "gp2.json") + " -o " + (dir / "grid"));
  ASSERT_EQ(grid.code, 0) << grid.output;
  EXPECT_NE(grid.output.find("2 data-parallel share(s) x graph parallel over 2"), std::string::npos) << grid.output;
  EXPECT_LT(max_relative_difference(dir / "one_b2/model.ckpt-4.pt", dir / "grid/model.ckpt-4.pt"), 1e-10);
  expect_same_lcurve(dir / "one_b2/lcurve.out", dir / "grid/lcurve.out");
}

TEST(GraphParallelTraining, RefusedWhereItCannotWork) {
  TempDir dir;
  auto se = painn_water(1, 2);
  se["model"]["descriptor"] = small_water_input({}, {})["model"]["descriptor"];
  write_text(dir / "se.json", se.dump());
  const Result r = run_ranks(dir, 2, "train " + (dir / "se.json") + " -o " + (dir / "out"));
  EXPECT_NE(r.output.find("'se_e2_a' descriptor cannot split a graph"), std::string::npos) << r.output;

  TempDir dir3;
  write_text(dir3 / "gp2.json", painn_water(1, 2).dump());
  const Result odd = run_ranks(dir3, 3, "train " + (dir3 / "gp2.json") + " -o " + (dir3 / "out"));
  EXPECT_NE(odd.output.find("graph 2 does not divide the 3 ranks"), std::string::npos) << odd.output;
}

}  // namespace
}  // namespace atomforge
