#pragma once
// Helpers shared by the data-layer tests: the tests' temporary folder and an assertion that a
// call fails with an atomforge::Error whose message names what it should.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../temp_dir_test_util.hpp"
#include "core/error.hpp"

namespace atomforge::test {

using testing::TempDir;

// Runs `call`, requires an atomforge::Error, and requires every piece of `expected` in its message.
inline void expect_error(const std::function<void()>& call, const std::vector<std::string>& expected) {
  try {
    call();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& piece : expected) {
      EXPECT_NE(message.find(piece), std::string::npos) << "message lacks '" << piece << "': " << message;
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected atomforge::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected an atomforge::Error mentioning '" << (expected.empty() ? "" : expected.front())
                << "', but the call succeeded";
}

inline std::string shared_data(const std::string& relative) {
  return std::string(ATOMFORGE_SHARED_DATA) + "/" + relative;
}

}  // namespace atomforge::test

// Skips the current test when the optional shared data set is not beside the clone.
#define AF_REQUIRE_SHARED(relative)                                                             \
  do {                                                                                          \
    if (!std::filesystem::exists(atomforge::test::shared_data(relative))) {                     \
      GTEST_SKIP() << "shared data '" << atomforge::test::shared_data(relative) << "' is absent"; \
    }                                                                                           \
  } while (0)
