#include "cli/run_command.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <c10/util/Exception.h>

#include "core/error.hpp"
#include "core/logging.hpp"

namespace atomforge::cli {

namespace {
bool g_verbose = false;
}

void set_verbose(bool verbose) { g_verbose = verbose; }

int run_command(const std::function<void()>& body) {
  static bool logging_ready = false;
  if (!logging_ready) {
    init_logging(g_verbose);
    logging_ready = true;
  }
  try {
    body();
    return 0;
  } catch (const Error& e) {
    end_progress_line();
    std::fprintf(stderr, "atomforge: error: %s\n", e.what());
  } catch (const c10::Error& e) {
    end_progress_line();
    std::fprintf(stderr, "atomforge: error in a tensor operation: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    end_progress_line();
    std::fprintf(stderr, "atomforge: error: %s\n", e.what());
  }
  return 1;
}

void run_or_exit(const std::function<void()>& body) {
  if (run_command(body) != 0) std::exit(1);
}

}  // namespace atomforge::cli
