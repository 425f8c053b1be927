// Bad input gives one clear error naming the key or file, a non-zero exit, and no output at all.
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"

namespace atomforge::testing {
namespace {

class BadInput : public ::testing::Test {
 protected:
  nlohmann::ordered_json input = small_water_input();

  // Runs training on `input` and checks the failure, its message, and that nothing was written.
  void expect_failure(const std::vector<std::string>& message_parts) {
    write_text(dir / "input.json", input.dump(2));
    const Result r = run("train " + (dir / "input.json") + " -o " + (dir / "out"));
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
    for (const auto& part : message_parts) EXPECT_NE(r.output.find(part), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir.path / "out")) << "a failed run left output behind";
    EXPECT_EQ(r.output.find("Segmentation"), std::string::npos);
  }
  TempDir dir;
};

TEST_F(BadInput, UnknownKeyNamesPathAndSuggestion) {
  input["training"]["numb_step"] = input["training"]["numb_steps"];
  input["training"].erase("numb_steps");
  expect_failure({"training.numb_step", "did you mean 'training.numb_steps'"});
}

TEST_F(BadInput, UnknownNestedKey) {
  input["model"]["descriptor"]["rcutt"] = 5.0;
  expect_failure({"model.descriptor.rcutt", "model.descriptor.rcut"});
}

TEST_F(BadInput, WrongType) {
  input["training"]["numb_steps"] = "ten";
  expect_failure({"training.numb_steps", "must be an integer"});
}

TEST_F(BadInput, MissingSystemFolder) {
  input["training"]["training_data"]["systems"] = {bundled("water/no_such_system")};
  expect_failure({"no_such_system", "does not exist"});
}

TEST_F(BadInput, TypeMapWithoutTheDataElements) {
  input["model"]["type_map"] = {"O", "C"};
  expect_failure({"water/data_0", "'H'"});
}

TEST_F(BadInput, CorruptNpy) {
  fs::copy(bundled("water/data_0"), dir.path / "data_0", fs::copy_options::recursive);
  const std::string coord = dir / "data_0/set.000/coord.npy";
  fs::resize_file(coord, fs::file_size(coord) - 1000);
  input["training"]["training_data"]["systems"] = {dir / "data_0"};
  expect_failure({"coord.npy", "truncated"});
}

TEST_F(BadInput, ThreadCountBelowOne) {
  write_text(dir / "input.json", input.dump(2));
  const Result r = run("--threads 0 train " + (dir / "input.json") + " -o " + (dir / "out"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--threads"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path / "out"));
}

// Checked at start-up against this LibTorch and machine: a CPU-only one has no GPU, a GPU one not 99.
TEST_F(BadInput, DeviceThisMachineLacks) {
  input["training"]["device"] = "tpu";
  expect_failure({"training.device", "'tpu' is not a device"});
  input["training"]["device"] = "cuda:99";
  expect_failure({"training.device", "'cuda:99'"});
}

TEST_F(BadInput, TestOnADeviceThisMachineLacks) {
  write_text(dir / "input.json", input.dump(2));
  ASSERT_EQ(run("train " + (dir / "input.json") + " -o " + (dir / "out")).code, 0);
  const Result r = run("test -m " + (dir / "out/model.ckpt.pt") + " -s " + bundled("water/data_3") + " --device gpu");
  EXPECT_NE(r.code, 0) << r.output;
  for (const char* part : {"--device", "'gpu' is not a device"}) EXPECT_NE(r.output.find(part), std::string::npos) << r.output;
}

TEST_F(BadInput, InvalidJson) {
  write_text(dir / "input.json", "{\"model\": ");
  const Result r = run("train " + (dir / "input.json") + " -o " + (dir / "out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("input.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path / "out"));
}

TEST_F(BadInput, SelWithWrongLength) {
  input["model"]["descriptor"]["sel"] = {24};
  expect_failure({"sel", "2 types"});
}

TEST_F(BadInput, CorruptCheckpointForTest) {
  write_text(dir / "model.pt", "not a model");
  const Result r = run("test -m " + (dir / "model.pt") + " -s " + bundled("water/data_3"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("model.pt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bad magic"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace atomforge::testing
