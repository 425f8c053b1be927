// atomforge change-bias FILE -s SYSTEM [SYSTEM...] [--model-branch TASK] -o OUT: re-fits one
// head's per-element energy bias to labelled systems (DeePMD-kit's `dp change-bias`), e.g. to
// move a pre-trained head to another DFT setting's energy reference before fine-tuning.
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_file.hpp"
#include "cli/run_command.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "model/energy_model.hpp"
#include "model/parameters.hpp"

namespace atomforge::cli {

namespace {

struct ChangeBiasOptions {
  std::string input;
  std::vector<std::string> systems;
  std::string head;
  std::string output;
};

std::vector<double> values_of(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void print_biases(const model::EnergyModel& model, const std::string& head, const std::vector<double>& before,
                  const std::vector<double>& after) {
  fmt::print("energy bias of head '{}' (eV per atom):\n", head);
  fmt::print("  {:<8s} {:>20s} {:>20s}\n", "element", "old", "new");
  for (std::size_t t = 0; t < model.type_map().size(); ++t)
    fmt::print("  {:<8s} {:>20.10f} {:>20.10f}\n", model.type_map()[t], before[t], after[t]);
}

void run_change_bias(const ChangeBiasOptions& options) {
  TensorFile file = load_tensor_file(options.input);
  const auto model = model::EnergyModel::load(file, options.input);
  const std::string head = choose_head(*model, options.head, options.input, "--model-branch");
  const auto systems = load_all_systems(options.systems);

  const auto before = values_of(model->out_bias(head));
  // Residual fit: least squares of (label - prediction without bias) on per-element counts.
  model->fit_out_bias(head, systems, /*residual=*/true);
  const auto after = values_of(model->out_bias(head));

  // Replace only the bias array: a checkpoint keeps its optimiser state, step and data-stream
  // positions (training can resume from it), a model file keeps its provenance.
  const std::string blob = "model.bias." + head;
  if (!file.blobs.count(blob)) fail("{}: missing array '{}'", options.input, blob);
  file.blobs[blob] = model::to_blob(model->out_bias(head));
  save_tensor_file(options.output, file);
  print_biases(*model, head, before, after);
  fmt::print("wrote {} ({})\n", options.output, file_kind(file));
}

}  // namespace

void add_change_bias_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("change-bias", "re-fit a head's per-element energy bias to labelled systems");
  auto options = std::make_shared<ChangeBiasOptions>();
  cmd->add_option("file", options->input, "checkpoint or model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-s,--system", options->systems, "systems, or folders searched for systems")->required();
  cmd->add_option("--model-branch,--head", options->head, "the head (task) to re-fit; required with several heads");
  cmd->add_option("-o,--output", options->output, "file to write (same kind as the input)")->required();
  cmd->callback([options] {
    run_or_exit([&] { run_change_bias(*options); });
  });
}

}  // namespace atomforge::cli
