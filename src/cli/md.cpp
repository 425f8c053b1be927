// atomforge md md.json [-o OUTDIR]: molecular dynamics with a model (NVE, Langevin or Nose-Hoover
// NVT), writing thermo.out, an extxyz trajectory, rdf.out and msd.out to OUTDIR.
#include <filesystem>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "cli/run_command.hpp"
#include "core/atomic_file.hpp"
#include "md/md_input.hpp"
#include "md/run_md.hpp"

namespace atomforge::cli {

void add_md_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("md", "molecular dynamics with a model: NVE or NVT, thermo log, trajectory, RDF, MSD");
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>(".");
  cmd->add_option("input", *input, "md input JSON (keys: `atomforge doc-md-input`)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", *output, "folder for thermo.out, the trajectory, rdf.out, msd.out");
  cmd->callback([input, output] {
    run_or_exit([&] {
      config::json resolved;
      const md::MdOptions options = md::read_md_input(*input, &resolved);
      std::filesystem::create_directories(*output);
      write_file_atomic((std::filesystem::path(*output) / "md.resolved.json").string(), resolved.dump(2) + "\n");
      md::run_md(options, *output);
      spdlog::info("plots: python3 scripts/plot_md.py {} (needs python3-matplotlib)", *output);
    });
  });
}

}  // namespace atomforge::cli
