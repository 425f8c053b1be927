// atomforge freeze CKPT [--head TASK] -o model.pth: a single-head model file for inference.
// It holds the model only (no optimiser or data-stream state), so it is small and every
// inference path reads it without choosing a head.
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_file.hpp"
#include "cli/run_command.hpp"
#include "core/tensor_file.hpp"
#include "model/energy_model.hpp"

namespace atomforge::cli {

namespace {

struct FreezeOptions {
  std::string input;
  std::string head;
  std::string output = "frozen_model.pth";
};

// Where the model came from, so `show` on the frozen file can tell.
nlohmann::ordered_json source_of(const TensorFile& file, const std::string& path, const std::string& head) {
  nlohmann::ordered_json source = {{"path", path}};
  if (file.meta.contains("step")) source["step"] = file.meta.at("step");
  source["head"] = head;
  return source;
}

void run_freeze(const FreezeOptions& options) {
  const TensorFile file = load_tensor_file(options.input);
  const auto model = model::EnergyModel::load(file, options.input);
  const std::string head = choose_head(*model, options.head, options.input, "--head");
  const auto single = model->extract_head(head);

  TensorFile out;
  single->save(out);  // sets meta.kind "atomforge-energy-model"
  out.meta["source"] = source_of(file, options.input, head);
  save_tensor_file(options.output, out);
  fmt::print("froze head '{}' of {} into {} ({} parameters)\n", head, options.input, options.output,
             single->parameters().parameter_count());
}

}  // namespace

void add_freeze_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("freeze", "write one head of a checkpoint as a model file (no optimiser state)");
  auto options = std::make_shared<FreezeOptions>();
  cmd->add_option("checkpoint", options->input, "checkpoint (or model file)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--head,--model-branch", options->head, "the head (task) to keep; required with several heads");
  cmd->add_option("-o,--output", options->output, "model file to write")->capture_default_str();
  cmd->callback([options] {
    run_or_exit([&] { run_freeze(*options); });
  });
}

}  // namespace atomforge::cli
