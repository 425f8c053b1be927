#pragma once
// Runs a verb's body: user errors print one clear line and exit 1, never a crash.
#include <functional>

namespace atomforge::cli {

int run_command(const std::function<void()>& body);
// run_command, then exit(1) on failure: the body of every verb's callback.
void run_or_exit(const std::function<void()>& body);
// Debug logging for the verb that runs next (the global -v flag).
void set_verbose(bool verbose);

}  // namespace atomforge::cli
