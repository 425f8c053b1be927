#pragma once
// Comparisons of tensors for the model tests.
#include <algorithm>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace atomforge::testing {

// |got - want| <= tolerance * max(1, max |want|), element-wise, for tensors of the same shape.
inline void expect_close(const at::Tensor& got, const at::Tensor& want, double tolerance, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  if (want.numel() == 0) return;
  const double scale = std::max(1.0, want.abs().max().item<double>());
  EXPECT_LE((got - want).abs().max().item<double>(), tolerance * scale) << what;
}

// expect_close on each pair of two lists of tensors, which must be as long.
inline void expect_close_each(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want,
                              double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tolerance, what + " " + std::to_string(k));
}

}  // namespace atomforge::testing
