// atomforge pack SYSTEMS... -o data.afd: npy systems (folders, searched recursively), extended
// XYZ files and other stores into one packed data store (data/packed_store.hpp) that train and
// test read like npy systems. Systems are read and written one at a time, so packing needs the
// memory of the largest system, not of the data set; nothing is written if any input is bad.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/run_command.hpp"
#include "core/error.hpp"
#include "data/load_systems.hpp"
#include "data/packed_store.hpp"

namespace atomforge::cli {

namespace {

struct PackOptions {
  std::vector<std::string> inputs;
  std::string output;
};

void run_pack(const PackOptions& options) {
  if (!data::is_packed_store_path(options.output)) fail("-o '{}': a packed data store's name ends in .afd", options.output);
  const auto t0 = std::chrono::steady_clock::now();
  data::PackedStoreWriter writer(options.output);
  for (const std::string& input : options.inputs) {
    data::for_each_system(input, [&](data::System&& system) { writer.add(system, system.path); });
  }
  writer.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("packed {} systems, {} frames ({:.1f} MB) into {} in {:.2f} s\n", writer.systems(), writer.frames(),
             static_cast<double>(writer.bytes()) / 1e6, options.output, seconds);
}

}  // namespace

void add_pack_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pack", "pack npy systems and extended XYZ into one memory-mapped data store (.afd)");
  auto options = std::make_shared<PackOptions>();
  cmd->add_option("systems", options->inputs, "npy system folders (searched recursively), .xyz/.extxyz files, .afd stores")
      ->required();
  cmd->add_option("-o,--output", options->output, "the store to write (.afd)")->required();
  cmd->callback([options] {
    run_or_exit([&] { run_pack(*options); });
  });
}

}  // namespace atomforge::cli
