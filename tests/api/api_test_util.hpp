#pragma once
// Shared by the C API tests: handle ownership, tensor values, comparisons and the tiny test model.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "atomforge/atomforge.h"

namespace atomforge::testing {

struct ModelDeleter {
  void operator()(af_model* m) const { af_model_free(m); }
};
using Handle = std::unique_ptr<af_model, ModelDeleter>;

inline std::vector<double> values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

inline void expect_close(double a, double b, const std::string& what) {
  EXPECT_NEAR(a, b, 1e-10 * std::max(1.0, std::abs(b))) << what;
}

// A tiny model of O, H and C trained 5 steps on water and CH3OH, written under `dir`; returns the
// checkpoint's path, or "" (with a test failure) when training failed.
inline std::string train_tiny_model(const TempDir& dir) {
  auto input = small_water_input({bundled("water/data_0"), bundled("mf/gfn1/train/CH3OH")}, {bundled("water/data_3")});
  input["model"]["type_map"] = {"O", "H", "C"};
  input["model"]["descriptor"]["sel"] = {24, 48, 8};
  input["training"]["numb_steps"] = 5;
  write_text(dir / "input.json", input.dump());
  const Result r = run("train " + (dir / "input.json") + " -o " + (dir / "out"));
  EXPECT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = dir / "out/model.ckpt.pt";
  EXPECT_TRUE(fs::exists(checkpoint)) << r.output;
  return r.code == 0 && fs::exists(checkpoint) ? checkpoint : "";
}

// A suite sharing one tiny model (trained once per suite).
class TinyModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    checkpoint_ = train_tiny_model(*dir_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (checkpoint_.empty() || !fs::exists(checkpoint_)) GTEST_SKIP() << "training the test model failed";
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string checkpoint_;
};

}  // namespace atomforge::testing
