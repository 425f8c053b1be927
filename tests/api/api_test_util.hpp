#pragma once
// Shared by the C API tests: handle ownership, comparisons and the suites' trained models.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../model/model_test_util.hpp"
#include "atomforge/atomforge.h"

namespace atomforge::testing {

struct ModelDeleter {
  void operator()(af_model* m) const { af_model_free(m); }
};
using Handle = std::unique_ptr<af_model, ModelDeleter>;

inline void expect_close(double a, double b, const std::string& what) {
  EXPECT_NEAR(a, b, 1e-10 * std::max(1.0, std::abs(b))) << what;
}

// expect_close on the first `n` values of `got` and `want`.
inline void expect_close_each(const std::vector<double>& got, const std::vector<double>& want, std::size_t n,
                              const std::string& what) {
  ASSERT_GE(got.size(), n) << what;
  ASSERT_GE(want.size(), n) << what;
  for (std::size_t k = 0; k < n; ++k) expect_close(got[k], want[k], what + " " + std::to_string(k));
}

// A tiny model of O, H and C trained 5 steps on water and CH3OH.
inline nlohmann::ordered_json tiny_model_input() {
  auto input = small_water_input({bundled("water/data_0"), bundled("mf/gfn1/train/CH3OH")}, {bundled("water/data_3")});
  input["model"]["type_map"] = {"O", "H", "C"};
  input["model"]["descriptor"]["sel"] = {24, 48, 8};
  input["training"]["numb_steps"] = 5;
  return input;
}

// A suite sharing one model (the checkpoint of `make_input()`, see cached_model) and a folder.
template <nlohmann::ordered_json (*make_input)()>
class TrainedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    checkpoint_ = cached_model(make_input(), false);
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

using TinyModelTest = TrainedModelTest<tiny_model_input>;

}  // namespace atomforge::testing
