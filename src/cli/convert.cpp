// atomforge convert IN OUT: between DeePMD-kit's backend-neutral YAML model files (what
// `dp convert-backend model.pth model.yaml` writes) and our model files, by extension:
// .yaml/.yml -> .pth imports a se_e2_a energy model, .pth -> .yaml/.yml exports one.
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_file.hpp"
#include "cli/run_command.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "model/deepmd_format.hpp"

namespace atomforge::cli {

namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string head;
};

bool is_deepmd(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".dp" || ext == ".hlo";
}

void run_convert(const ConvertOptions& options) {
  if (is_deepmd(options.input) && !is_deepmd(options.output)) {
    const auto model = model::import_deepmd_model(options.input);
    TensorFile out;
    model->save(out);
    out.meta["source"] = {{"path", options.input}, {"format", "deepmd-kit"}};
    save_tensor_file(options.output, out);
    fmt::print("imported {} into {} ({} parameters)\n", options.input, options.output,
               model->parameters().parameter_count());
  } else if (!is_deepmd(options.input) && is_deepmd(options.output)) {
    const std::string ext = std::filesystem::path(options.output).extension().string();
    if (ext != ".yaml" && ext != ".yml") fail("{}: only .yaml/.yml DeePMD-kit files can be written", options.output);
    const auto model = model::EnergyModel::load(load_tensor_file(options.input), options.input);
    const std::string head = choose_head(*model, options.head, options.input, "--head");
    model::export_deepmd_model(*model->extract_head(head), options.output);
    fmt::print("exported head '{}' of {} into {}\n", head, options.input, options.output);
  } else {
    fail("convert {} -> {}: one side must be a DeePMD-kit .yaml/.yml file and the other our model file",
         options.input, options.output);
  }
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert", "convert between DeePMD-kit's backend-neutral .yaml models (se_e2_a energy) and model files");
  auto options = std::make_shared<ConvertOptions>();
  cmd->add_option("input", options->input, "model.yaml (DeePMD-kit) or model.pth / checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("output", options->output, "model.pth, or model.yaml")->required();
  cmd->add_option("--head,--model-branch", options->head, "the head to export; required with several heads");
  cmd->callback([options] {
    run_or_exit([&] { run_convert(*options); });
  });
}

}  // namespace atomforge::cli
