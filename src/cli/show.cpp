// atomforge show FILE: what a checkpoint or model file holds, as plain text (DeePMD-kit's
// `dp show`): kind, format, precision, type map, cut-off, descriptor, heads with their fitting
// nets and biases, parameter counts per part, training step. For a packed data store (.afd):
// its systems, their atoms, frames and labels.
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_file.hpp"
#include "cli/run_command.hpp"
#include "core/tensor_file.hpp"
#include "data/packed_store.hpp"
#include "model/energy_model.hpp"

namespace atomforge::cli {

namespace {

// Trainable values whose registered name starts with `prefix` (parameters only: statistics and
// biases are buffers, fitted rather than trained).
int64_t parameters_under(const model::EnergyModel& model, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& [name, tensor] : model.parameters().parameters())
    if (name.compare(0, prefix.size(), prefix) == 0) n += tensor->numel();
  return n;
}

int64_t buffer_values(const model::EnergyModel& model) {
  int64_t n = 0;
  for (const auto& [name, tensor] : model.parameters().buffers()) n += tensor->numel();
  return n;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

void print_header(const TensorFile& file, const model::EnergyModel& model, const std::string& path) {
  const auto& descriptor = model.config().at("descriptor");
  fmt::print("file             : {}\n", path);
  fmt::print("kind             : {} ({})\n", file_kind(file), file.meta.value("kind", std::string{"no kind"}));
  // Parsing accepts exactly one version, so the file has the one this build reads.
  fmt::print("format version   : {}\n", TensorFile::kFormatVersion);
  fmt::print("precision        : {}\n", model.dtype() == at::kFloat ? "float32" : "float64");
  fmt::print("type map         : {}\n", joined(model.type_map(), " "));
  fmt::print("cut-off          : {} A{}\n", model.rcut(),
             descriptor.contains("rcut_smth") ? fmt::format(" (smoothing from {} A)", descriptor.at("rcut_smth").get<double>())
                                              : std::string{});
  if (model.receptive_field() != model.rcut())
    fmt::print("receptive field  : {} A (message passing: an energy depends on atoms this far)\n",
               model.receptive_field());
  fmt::print("descriptor type  : {}\n", descriptor.at("type").get<std::string>());
}

void print_training(const TensorFile& file) {
  if (file.meta.contains("step")) fmt::print("training step    : {}\n", file.meta.at("step").get<int64_t>());
  if (file.meta.contains("source")) {
    const auto& source = file.meta.at("source");
    std::string text = source.value("path", std::string{"?"});
    if (source.contains("step")) text += fmt::format(" (step {})", source.at("step").get<int64_t>());
    if (source.contains("head")) text += fmt::format(", head {}", source.at("head").get<std::string>());
    fmt::print("frozen from      : {}\n", text);
  }
  int64_t optimiser_arrays = 0;
  for (const auto& [name, blob] : file.blobs)
    if (name.rfind("adam.", 0) == 0) ++optimiser_arrays;
  if (optimiser_arrays > 0) fmt::print("optimiser state  : {} arrays (Adam)\n", optimiser_arrays);
}

void print_heads(model::EnergyModel& model) {
  const auto& heads = model.config().at("heads");
  fmt::print("heads            : {}\n", model.heads().size());
  for (const auto& name : model.heads()) {
    const auto& head = heads.at(name);
    fmt::print("  {}: fitting net '{}', task index {}\n", name, head.at("fitting").get<std::string>(),
               head.value("case", int64_t{0}));
    const at::Tensor bias = model.out_bias(name).to(at::kDouble).contiguous();
    std::string values;
    for (std::size_t t = 0; t < model.type_map().size(); ++t)
      values += fmt::format("{}{} {:.10g}", t ? ", " : "", model.type_map()[t], bias[t].item<double>());
    fmt::print("    energy bias: {}\n", values);
  }
}

void print_parameters(const model::EnergyModel& model) {
  fmt::print("parameters (trainable values):\n");
  fmt::print("  {:<28s} {}\n", "descriptor", parameters_under(model, "descriptor."));
  for (const auto& [key, fitting] : model.config().at("fitting_nets").items()) {
    const int64_t cases = fitting.value("dim_case_embd", int64_t{0});
    const std::string label = fmt::format("fitting net '{}'", key);
    fmt::print("  {:<28s} {}{}\n", label, parameters_under(model, "fitting." + key + "."),
               cases > 0 ? fmt::format("  (shared by {} tasks)", cases) : "");
  }
  fmt::print("  {:<28s} {}\n", "total", model.parameters().parameter_count());
  fmt::print("  {:<28s} {}\n", "not trained (stats, biases)", buffer_values(model));
}

std::string formula(const data::System& s) {
  std::vector<int64_t> counts(s.type_map.size(), 0);
  for (const int32_t t : s.types) ++counts[static_cast<std::size_t>(t)];
  std::string out;
  for (std::size_t t = 0; t < counts.size(); ++t)
    if (counts[t] > 0) out += s.type_map[t] + (counts[t] > 1 ? std::to_string(counts[t]) : "");
  return out.empty() ? "no type_map" : out;
}

void show_store(const std::string& path) {
  const data::PackedStore store = data::open_packed_store(path);
  fmt::print("file             : {}\n", path);
  fmt::print("kind             : packed data store (format version {})\n", data::kPackedStoreVersion);
  fmt::print("size             : {:.1f} MB\n", static_cast<double>(store.file_size) / 1e6);
  fmt::print("frames           : {} in {} systems\n", store.total_frames(), store.systems.size());
  for (const data::System& s : store.systems) {
    std::vector<std::string> labels;
    if (s.has_energy()) labels.push_back("energy");
    if (s.has_force()) labels.push_back("force");
    if (s.has_virial()) labels.push_back("virial");
    if (s.has_velocity()) labels.push_back("velocity");
    fmt::print("  {}: {} atoms ({}), {} frames, {}, labels: {}\n", s.path.substr(path.size()), s.natoms(), formula(s),
               s.nframes, s.pbc ? "periodic" : "nopbc", labels.empty() ? "none" : joined(labels, " "));
  }
}

void run_show(const std::string& path) {
  if (data::is_packed_store_path(path)) return show_store(path);
  const TensorFile file = load_tensor_file(path);
  auto model = model::EnergyModel::load(file, path);
  print_header(file, *model, path);
  print_training(file);
  print_heads(*model);
  print_parameters(*model);
}

}  // namespace

void add_show_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("show", "describe a checkpoint or model file (heads, type map, sizes, step) or a packed data store");
  auto path = std::make_shared<std::string>();
  cmd->add_option("file", *path, "checkpoint, model file or packed data store (.afd)")->required()->check(CLI::ExistingFile);
  cmd->callback([path] {
    run_or_exit([&] { run_show(*path); });
  });
}

}  // namespace atomforge::cli
