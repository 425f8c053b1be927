// atomforge pack end to end: a store trains, tests and restarts exactly like the npy systems it
// was packed from; bad inputs and damaged stores give a clear error and no output.
#include <algorithm>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"

namespace atomforge::testing {
namespace {

bool only_files(const TempDir& dir, const std::vector<std::string>& names) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir.path)) found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  return found == names;
}

TEST(PackCommand, StoreTrainsAndTestsLikeItsNpySystems) {
  TempDir dir;
  const Result packed = run("pack " + bundled("water/data_0") + " -o " + (dir / "train.afd"));
  ASSERT_EQ(packed.code, 0) << packed.output;
  EXPECT_NE(packed.output.find("packed 1 systems"), std::string::npos) << packed.output;
  ASSERT_EQ(run("pack " + bundled("water/data_3") + " -o " + (dir / "valid.afd")).code, 0);
  const Result shown = run("show " + (dir / "train.afd"));
  EXPECT_NE(shown.output.find("frames           : 80 in 1 systems"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("192 atoms (O64H128), 80 frames, periodic, labels: energy force"), std::string::npos)
      << shown.output;

  auto npy = small_water_input();
  auto afd = small_water_input({dir / "train.afd"}, {dir / "valid.afd"});
  for (auto* input : {&npy, &afd}) (*input)["training"]["numb_steps"] = 10;
  const Result a = train(dir, npy, "npy"), b = train(dir, afd, "afd");
  ASSERT_EQ(a.code, 0) << a.output;
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_EQ(read_text(dir / "afd/lcurve.out"), read_text(dir / "npy/lcurve.out"));
  // (The checkpoints differ only in the input they record: the system paths.)
  const auto metrics = [](const std::string& out) { return out.substr(out.find("number of test data")); };
  const Result trained_on_npy = run("test -m " + (dir / "npy/model.ckpt.pt") + " -s " + bundled("water/data_3"));
  const Result trained_on_afd = run("test -m " + (dir / "afd/model.ckpt.pt") + " -s " + bundled("water/data_3"));
  ASSERT_EQ(trained_on_npy.code, 0) << trained_on_npy.output;
  ASSERT_EQ(trained_on_afd.code, 0) << trained_on_afd.output;
  EXPECT_EQ(metrics(trained_on_afd.output), metrics(trained_on_npy.output));

  const Result on_npy = run("test -m " + (dir / "npy/model.ckpt.pt") + " -s " + bundled("water/data_3") + " -n 3");
  const Result on_afd = run("test -m " + (dir / "npy/model.ckpt.pt") + " -s " + (dir / "valid.afd") + " -n 3");
  ASSERT_EQ(on_afd.code, 0) << on_afd.output;
  EXPECT_EQ(metrics(on_afd.output), metrics(on_npy.output));
}

// The trainer reads batches ahead on a background thread; a restart still continues bit for bit.
TEST(PackCommand, RestartFromAStoreIsBitForBit) {
  TempDir dir;
  ASSERT_EQ(run("pack " + bundled("water") + " -o " + (dir / "water.afd")).code, 0);
  auto input = small_water_input({dir / "water.afd"}, {dir / "water.afd"});
  input["training"]["numb_steps"] = 30;
  input["training"]["save_freq"] = 15;
  const Result full = train(dir, input, "full");
  ASSERT_EQ(full.code, 0) << full.output;
  fs::create_directories(dir.path / "resumed");
  fs::copy_file(dir / "full/model.ckpt-15.pt", dir / "resumed/model.ckpt-15.pt");
  const Result resumed = train(dir, input, "resumed", " --restart " + (dir / "resumed/model.ckpt-15.pt"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(read_text(dir / "resumed/model.ckpt-30.pt"), read_text(dir / "full/model.ckpt-30.pt"));
  const std::string full_curve = read_text(dir / "full/lcurve.out");
  const std::string tail = read_text(dir / "resumed/lcurve.out");
  EXPECT_EQ(full_curve.substr(full_curve.find("\n     20 ")), tail.substr(tail.find("\n     20 ")));
}

TEST(PackCommand, BadInputsWriteNothing) {
  TempDir dir;
  fs::copy(bundled("water/data_0"), dir.path / "good", fs::copy_options::recursive);
  fs::copy(bundled("water/data_3"), dir.path / "bad", fs::copy_options::recursive);
  const std::string coord = dir / "bad/set.000/coord.npy";
  fs::resize_file(coord, fs::file_size(coord) - 100);
  const std::vector<std::string> before = {"bad", "good"};
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {(dir / "good") + " " + (dir / "bad"), "coord.npy': truncated"},
           {(dir / "good") + " " + (dir / "missing"), "missing' does not exist"},
           {(dir / "good") + " " + coord, "neither extended XYZ"},
       }) {
    const Result r = run("pack " + args + " -o " + (dir / "out.afd"));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_TRUE(only_files(dir, before)) << args;
  }
  const Result r = run("pack " + (dir / "good") + " -o " + (dir / "out.npy"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("ends in .afd"), std::string::npos) << r.output;
  EXPECT_TRUE(only_files(dir, before));
}

TEST(PackCommand, DamagedStoreStopsTrainingWithAClearError) {
  TempDir dir;
  ASSERT_EQ(run("pack " + bundled("water/data_0") + " -o " + (dir / "train.afd")).code, 0);
  fs::resize_file(dir / "train.afd", fs::file_size(dir / "train.afd") - 1);
  const Result r = train(dir, small_water_input({dir / "train.afd"}, {bundled("water/data_3")}), "out");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find((dir / "train.afd") + "': truncated packed data store"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path / "out"));
}

}  // namespace
}  // namespace atomforge::testing
