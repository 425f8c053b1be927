// atomforge train input.json [--restart CKPT | --init-model CKPT | --finetune CKPT --model-branch TASK] [-o DIR]
// Under mpirun, srun or torchrun-style variables every rank runs this and they train together.
#include <cstdlib>

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/run_command.hpp"
#include "core/error.hpp"
#include "dist/launch.hpp"
#include "dist/process_group.hpp"
#include "train/trainer.hpp"

namespace atomforge::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a model from a DeePMD-kit style input.json");
  auto options = std::make_shared<train::TrainOptions>();
  cmd->add_option("input", options->input_path, "input.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", options->output_dir, "folder for lcurve.out, checkpoints, input.resolved.json");
  auto* restart = cmd->add_option("--restart", options->restart, "continue from this checkpoint")
                      ->check(CLI::ExistingFile);
  auto* init = cmd->add_option("--init-model", options->init_model, "start from this checkpoint's parameters at step 0")
                   ->check(CLI::ExistingFile)
                   ->excludes(restart);
  cmd->add_option("--finetune", options->finetune,
                  "fine-tune this pre-trained checkpoint or model (its trunk, one head, energy bias re-fitted)")
      ->check(CLI::ExistingFile)
      ->excludes(restart)
      ->excludes(init);
  cmd->add_option("--model-branch", options->model_branch,
                  "with --finetune: the pre-trained head to start from, or RANDOM for a fresh head");
  cmd->callback([options] {
    run_or_exit([&] {
      const dist::Launch launch = dist::detect_launch();
      if (launch.world_size == 1) return train::Trainer(*options).run();
      // Rank 0 speaks for the run; the others report only problems (everything with -v).
      if (launch.rank != 0 && spdlog::get_level() > spdlog::level::debug) spdlog::set_level(spdlog::level::warn);
      options->connect = [launch](const nlohmann::ordered_json& parallel) {
        return dist::connect(launch, parallel.at("timeout").get<double>());
      };
      try {
        train::Trainer(*options).run();
      } catch (...) {
        rethrow_with_context(fmt::format("rank {} of {}", launch.rank, launch.world_size));
      }
    });
  });
}

}  // namespace atomforge::cli
