// atomforge train input.json [--restart CKPT | --init-model CKPT | --finetune CKPT --model-branch TASK] [-o DIR]
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/run_command.hpp"
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
    run_or_exit([&] { train::Trainer(*options).run(); });
  });
}

}  // namespace atomforge::cli
