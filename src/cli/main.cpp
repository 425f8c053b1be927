#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/logging.hpp"

int main(int argc, char** argv) {
  CLI::App app{"atomforge: pre-train, fine-tune, distil and serve large atomic models"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "debug output");
  atomforge::cli::add_train_command(app);
  atomforge::cli::add_test_command(app);
  atomforge::cli::add_show_command(app);
  atomforge::cli::add_freeze_command(app);
  atomforge::cli::add_change_bias_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
