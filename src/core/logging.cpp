#include "core/logging.hpp"

#include <cstdio>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace atomforge {

namespace {
bool g_progress_open = false;
}

void init_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("atomforge");
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void progress_line(const std::string& line) {
  if (::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    g_progress_open = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void end_progress_line() {
  if (g_progress_open) std::fprintf(stderr, "\n");
  g_progress_open = false;
}

}  // namespace atomforge
