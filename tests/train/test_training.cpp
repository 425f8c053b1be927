// Training end to end through the CLI: learning on real data, exact restart, checkpoints.
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "data/extxyz.hpp"
#include "data/system.hpp"

namespace atomforge::testing {
namespace {

// The value of lcurve column `name` in the first row (step 1) and the last (step `steps`).
std::pair<double, double> first_and_last(const std::string& path, const std::string& name, int64_t steps) {
  const auto rows = read_lcurve(path);
  if (rows.empty()) {
    ADD_FAILURE() << "no rows in " << path;
    return {NAN, NAN};
  }
  EXPECT_EQ(rows.front().step, 1);
  EXPECT_EQ(rows.back().step, steps);
  return {lcurve_value(path, name, true), lcurve_value(path, name)};
}

// Training se_e2_a on DeePMD-kit's water for a few hundred steps halves the validation force
// error of the first step.
TEST(TrainingRegression, WaterValidationForceRmseHalves) {
  if (!shared_data_present()) GTEST_SKIP() << "needs ../shared/data (the benchmark data beside the clone)";
  const std::string water = std::string(ATOMFORGE_SHARED_DATA) + "/deepmd-examples/water/";
  TempDir dir;
  auto input = small_water_input({water + "data_0", water + "data_1", water + "data_2"}, {water + "data_3"});
  input["model"]["descriptor"]["sel"] = {46, 92};
  input["model"]["descriptor"]["rcut"] = 6.0;
  input["model"]["descriptor"]["neuron"] = {8, 16, 32};
  input["model"]["fitting_net"]["neuron"] = {32, 32, 32};
  input["learning_rate"]["decay_steps"] = 50;
  input["training"]["validation_data"]["numb_btch"] = 4;
  input["training"]["numb_steps"] = 300;
  input["training"]["disp_freq"] = 50;
  input["training"]["save_freq"] = 300;
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto [first, last] = first_and_last(dir / "out/lcurve.out", "rmse_f_val", 300);
  EXPECT_LT(last, 0.5 * first) << "validation force RMSE " << first << " -> " << last;
}

// The graph trunks learn GFN2-xTB molecules: the examples' inputs halve the validation force
// error of the first step (on the full 20 molecules when ../shared/data is there, otherwise on
// the bundled 4).
class GraphTrunkTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(GraphTrunkTraining, ValidationForceRmseHalves) {
  const std::string root = shared_data_present() ? std::string(ATOMFORGE_SHARED_DATA) + "/mf/gfn2/" : bundled("mf/gfn2/");
  TempDir dir;
  auto input = nlohmann::ordered_json::parse(
      read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/examples/graph/" + GetParam() + ".json"));
  input["training"]["training_data"]["systems"] = root + "train";
  input["training"]["validation_data"]["systems"] = root + "valid";
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto [first, last] = first_and_last(dir / "out/lcurve.out", "rmse_f_val", input["training"]["numb_steps"]);
  EXPECT_LT(last, 0.5 * first) << GetParam() << ": validation force RMSE " << first << " -> " << last;
}

INSTANTIATE_TEST_SUITE_P(Trunks, GraphTrunkTraining, ::testing::Values("painn", "dimenet"));

// A run restarted from a mid-run checkpoint writes exactly the rows, and ends with exactly the
// parameters and optimiser state, of the uninterrupted run.
TEST(TrainingRestart, ContinuesBitForBit) {
  TempDir dir;
  expect_resumed_run_is_bit_for_bit(dir, small_water_input(), 20, 40);
  EXPECT_EQ(read_lcurve(dir / "full/lcurve.out").size(), 9u);  // steps 1, 5, 10, ..., 40
}

TEST(TrainingCheckpoints, KeepsTheNewestAndLinksTheLatest) {
  TempDir dir;
  auto input = small_water_input();
  input["training"]["numb_steps"] = 25;
  input["training"]["save_freq"] = 5;
  input["training"]["max_ckpt_keep"] = 2;
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.path / "out")) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"input.resolved.json", "lcurve.out", "model.ckpt-20.pt",
                                             "model.ckpt-25.pt", "model.ckpt.pt"}));
  EXPECT_EQ(fs::read_symlink(dir.path / "out/model.ckpt.pt").string(), "model.ckpt-25.pt");
  // Every default is written out, so the run can be reproduced from this file alone.
  const auto resolved = nlohmann::json::parse(read_text(dir / "out/input.resolved.json"));
  EXPECT_EQ(resolved["model"]["descriptor"]["resnet_dt"], false);
  EXPECT_EQ(resolved["loss"]["start_pref_v"], 0.0);
  EXPECT_EQ(resolved["training"]["disp_file"], "lcurve.out");
}

// A sel smaller than the real neighbour count drops neighbours (as DeePMD-kit does); the run
// says so, once per system, and names the system.
TEST(TrainingInputs, WarnsOnceWhenSelDropsNeighbours) {
  TempDir dir;
  auto input = small_water_input();
  input["model"]["descriptor"]["sel"] = {4, 8};
  input["training"]["numb_steps"] = 6;
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const std::string& system : {bundled("water/data_0"), bundled("water/data_3")}) {
    std::istringstream lines(r.output);
    std::size_t count = 0;
    for (std::string line; std::getline(lines, line);)
      count += line.find(system + ": ") != std::string::npos && line.find("Raise model.descriptor.sel") != std::string::npos;
    EXPECT_EQ(count, 1u) << system << "\n" << r.output;
  }
  // With the default sel of the test input nothing is dropped and nothing is said.
  input["model"]["descriptor"]["sel"] = {24, 48};
  const Result quiet = train(dir, input, "quiet");
  ASSERT_EQ(quiet.code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("Raise model.descriptor.sel"), std::string::npos) << quiet.output;
}

}  // namespace
}  // namespace atomforge::testing

namespace atomforge::testing {
namespace {

// The same frames as an npy system and as extended XYZ train and test identically.
TEST(TrainingInputs, ExtxyzSystemsEqualNpySystems) {
  TempDir dir;
  const data::System water = data::read_deepmd_system(bundled("water/data_0"));
  data::write_extxyz(dir / "water.extxyz", water);
  for (const std::string& name : {"npy", "xyz"}) {
    auto input = small_water_input({name == "npy" ? bundled("water/data_0") : dir / "water.extxyz"},
                                   {bundled("water/data_3")});
    input["training"]["numb_steps"] = 6;
    const Result r = train(dir, input, name);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  EXPECT_EQ(read_text(dir / "npy/lcurve.out"), read_text(dir / "xyz/lcurve.out"));
  const Result on_npy = run("test -m " + (dir / "npy/model.ckpt.pt") + " -s " + bundled("water/data_0") + " -n 4");
  const Result on_xyz = run("test -m " + (dir / "npy/model.ckpt.pt") + " -s " + (dir / "water.extxyz") + " -n 4");
  ASSERT_EQ(on_xyz.code, 0) << on_xyz.output;
  const auto metrics = [](const std::string& out) { return out.substr(out.find("number of test data")); };
  EXPECT_EQ(metrics(on_npy.output), metrics(on_xyz.output));
}

}  // namespace
}  // namespace atomforge::testing
