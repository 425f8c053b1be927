// atomforge md end to end: outputs and their consistency, restart from the trajectory's last
// frame (velocities round-trip), input errors naming the key or file.
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../model/model_test_util.hpp"
#include "core/tensor_file.hpp"
#include "data/extxyz.hpp"

namespace atomforge::testing {
namespace {

const auto rows = numeric_rows;

class MdCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = small_model({"O", "H"}, {30, 60}, 4.5);
    m->compute_statistics({single_frame("water/data_0", 0)}, {1});
    roughen(*m, 30.0);
    save_model(*m, dir_ / "model.pth");
  }
  nlohmann::ordered_json input(const std::string& start) const {
    return {{"model", "model.pth"},
            {"start", {{"file", start}, {"frame", 0}}},
            {"ensemble", {{"type", "nve"}}},
            {"initial_temperature", 300},
            {"timestep_fs", 0.5},
            {"steps", 20},
            {"thermo_every", 5},
            {"trajectory", {{"every", 10}}},
            {"rdf", {{"every", 100}, {"rmax", 5.0}, {"nbins", 50}}},
            {"msd", {{"every", 2}}}};
  }
  TempDir dir_;
};

TEST_F(MdCli, WritesConsistentOutputsAndRestartsFromTheTrajectory) {
  write_text(dir_ / "md.json", input(bundled("water/data_0")).dump());
  const Result r = run("md " + (dir_ / "md.json") + " -o " + (dir_ / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("md step 20/20"), std::string::npos) << r.output;

  const auto thermo = rows(read_text(dir_ / "out/thermo.out"));
  ASSERT_EQ(thermo.size(), 5u);  // steps 0, 5, 10, 15, 20
  for (std::size_t k = 0; k < thermo.size(); ++k) {
    ASSERT_EQ(thermo[k].size(), 7u);
    EXPECT_EQ(thermo[k][0], 5.0 * k);
    EXPECT_DOUBLE_EQ(thermo[k][1], 2.5 * k);
    EXPECT_NEAR(thermo[k][5], thermo[k][3] + thermo[k][4], 1e-8);  // Etot = Epot + Ekin
    EXPECT_EQ(thermo[k][5], thermo[k][6]);                         // NVE: nothing else to conserve
  }
  EXPECT_NEAR(thermo[0][2], 300.0, 1e-3);

  const auto traj = data::read_extxyz(dir_ / "out/traj.extxyz");
  ASSERT_EQ(traj.size(), 1u);
  ASSERT_EQ(traj[0].nframes, 3);  // steps 0, 10, 20
  ASSERT_EQ(traj[0].velocity.size(), 3u * 192 * 3);
  EXPECT_NEAR(traj[0].energy[2], thermo[4][3], 1e-8);

  const auto rdf = rows(read_text(dir_ / "out/rdf.out"));
  ASSERT_EQ(rdf.size(), 50u);
  // r, g_O_O g_O_H g_H_H g_all, n_O_O n_O_H n_H_O n_H_H of the start frame only (every 100 > 20
  // steps), DFT liquid water: two H within 1.2 A of every O, half an O of every H.
  ASSERT_EQ(rdf[0].size(), 9u);
  EXPECT_DOUBLE_EQ(rdf[11][6], 2.0) << "n_O_H at r = " << rdf[11][0] + 0.05;
  EXPECT_DOUBLE_EQ(rdf[11][7], 1.0) << "n_H_O at r = " << rdf[11][0] + 0.05;
  const auto msd = rows(read_text(dir_ / "out/msd.out"));
  ASSERT_EQ(msd.size(), 11u);  // samples every 2 steps over 20
  EXPECT_EQ(msd[0][1], 0.0);
  EXPECT_GT(msd[10][3], 0.0);
  EXPECT_NE(read_text(dir_ / "out/msd.out").find("# D_H ="), std::string::npos);

  // Continue NVE from the last frame with its velocities: same energies as where the first run ended.
  auto again = input(dir_ / "out/traj.extxyz");
  again["start"]["frame"] = -1;
  again.erase("initial_temperature");
  write_text(dir_ / "again.json", again.dump());
  const Result r2 = run("md " + (dir_ / "again.json") + " -o " + (dir_ / "again"));
  ASSERT_EQ(r2.code, 0) << r2.output;
  const auto thermo2 = rows(read_text(dir_ / "again/thermo.out"));
  EXPECT_NEAR(thermo2[0][3], thermo[4][3], 1e-8);
  EXPECT_NEAR(thermo2[0][4], thermo[4][4], 1e-8);
}

TEST_F(MdCli, BadInputNamesTheKeyOrFile) {
  auto bad = input(bundled("water/data_0"));
  bad["ensemble"] = {{"type", "langevin"}, {"temperature", 300}, {"tau", 10}};
  write_text(dir_ / "bad.json", bad.dump());
  Result r = run("md " + (dir_ / "bad.json") + " -o " + (dir_ / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("ensemble.tau"), std::string::npos) << r.output;

  bad = input(bundled("water/data_0"));
  bad["start"]["frame"] = 1000;
  write_text(dir_ / "bad.json", bad.dump());
  r = run("md " + (dir_ / "bad.json") + " -o " + (dir_ / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("frame 1000 out of range"), std::string::npos) << r.output;

  bad = input(bundled("mf/gfn2/train/CH3OH"));
  write_text(dir_ / "bad.json", bad.dump());
  r = run("md " + (dir_ / "bad.json") + " -o " + (dir_ / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("'C'"), std::string::npos) << r.output;  // the model knows only O and H

  bad = input(bundled("water/data_0"));
  bad["device"] = "cuda:99";  // no such GPU, with or without CUDA
  write_text(dir_ / "bad.json", bad.dump());
  r = run("md " + (dir_ / "bad.json") + " -o " + (dir_ / "out"));
  EXPECT_EQ(r.code, 1);
  for (const char* part : {"bad.json: device", "'cuda:99'"}) EXPECT_NE(r.output.find(part), std::string::npos) << r.output;
}

}  // namespace
}  // namespace atomforge::testing
