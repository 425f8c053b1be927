#pragma once
// Runs a verb's body: user errors print one clear line and exit 1, never a crash.
#include <functional>

namespace atomforge::cli {

int run_command(const std::function<void()>& body, bool verbose = false);

}  // namespace atomforge::cli
