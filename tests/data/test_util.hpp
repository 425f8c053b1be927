#pragma once
// Helpers shared by the data-layer tests: a self-removing temporary folder and an assertion that
// a call fails with an atomforge::Error whose message names what it should.
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.hpp"

namespace atomforge::test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "atomforge";
    path_ = std::filesystem::temp_directory_path() /
            ("atomforge_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

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
