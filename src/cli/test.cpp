// atomforge test -m MODEL -s SYSTEM [SYSTEM...] [-n N] [-d PREFIX] [--model-branch TASK]: DeePMD-kit's
// `dp test`; a multi-task model or checkpoint needs the head (branch) to test.
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_file.hpp"
#include "cli/run_command.hpp"
#include "core/atomic_file.hpp"
#include "core/tensor_file.hpp"
#include "model/device.hpp"
#include "model/energy_model.hpp"

namespace atomforge::cli {

namespace {

struct TestOptions {
  std::string model;
  std::vector<std::string> systems;
  int64_t numb_test = 100;
  std::string detail;
  std::string head;
  int64_t chunk = 8;
  std::string device = "cpu";
};

// Mean absolute and root mean square error, with the count they average over (for weighting).
struct Error {
  double mae = 0, rmse = 0;
  int64_t count = 0;
};

Error error_of(const std::vector<double>& pred, const std::vector<double>& label, double scale) {
  Error e;
  e.count = static_cast<int64_t>(pred.size());
  for (std::size_t k = 0; k < pred.size(); ++k) {
    const double d = (pred[k] - label[k]) * scale;
    e.mae += std::abs(d);
    e.rmse += d * d;
  }
  e.mae /= static_cast<double>(e.count);
  e.rmse = std::sqrt(e.rmse / static_cast<double>(e.count));
  return e;
}

// dp test's labels: "Energy MAE", and for per-atom values ("Energy/") "Energy MAE/Natoms".
void print_error(const std::string& label, double mae, double rmse, const std::string& unit) {
  const bool per_atom = label.back() == '/';
  const std::string name = per_atom ? label.substr(0, label.size() - 1) : label;
  const std::string suffix = per_atom ? "/Natoms" : "";
  fmt::print("{:<19s}: {:e} {}\n", name + " MAE" + suffix, mae, unit);
  fmt::print("{:<19s}: {:e} {}\n", name + " RMSE" + suffix, rmse, unit);
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::string columns(const std::vector<double>& label, const std::vector<double>& pred, int64_t width,
                    double scale) {
  std::string out;
  for (std::size_t row = 0; row * width < label.size(); ++row) {
    for (int64_t c = 0; c < width; ++c) out += fmt::format("{:.10e} ", label[row * width + c] * scale);
    for (int64_t c = 0; c < width; ++c) out += fmt::format("{:.10e} ", pred[row * width + c] * scale);
    out.back() = '\n';
  }
  return out;
}

void run_test(const TestOptions& options) {
  const auto model = model::EnergyModel::load(load_tensor_file(options.model), options.model);
  model->to(model::resolve_device(options.device, "--device"));
  // Chosen before reading systems so that a missing --model-branch fails at once.
  const std::string head = choose_head(*model, options.head, options.model, "--model-branch");
  const auto systems = load_all_systems(options.systems);

  std::map<std::string, std::vector<Error>> all;  // metric -> per-system errors
  std::map<std::string, std::string> detail;      // file suffix -> contents
  for (const auto& system : systems) {
    const std::string& path = system.path;
    const int64_t n = std::min(options.numb_test, system.nframes);
    std::vector<double> e_pred, f_pred, v_pred;
    for (int64_t begin = 0; begin < n; begin += options.chunk) {
      std::vector<int64_t> frames;
      for (int64_t f = begin; f < std::min(n, begin + options.chunk); ++f) frames.push_back(f);
      const auto prediction = model->evaluate(model->prepare(system, frames), head, false);
      for (auto [source, target] : {std::pair{&prediction.energy, &e_pred}, std::pair{&prediction.force, &f_pred},
                                    std::pair{&prediction.virial, &v_pred}}) {
        const auto values = to_vector(*source);
        target->insert(target->end(), values.begin(), values.end());
      }
    }
    const double natoms = static_cast<double>(system.natoms());
    fmt::print("# ---------------output of atomforge test---------------\n");
    fmt::print("# testing system : {}\n# number of test data : {}{}\n", path, n,
               n < system.nframes ? fmt::format(" (the first {} of {} frames; -n sets how many)", n, system.nframes)
                                  : "");
    auto report = [&](const std::string& key, const std::string& label, const Error& e, const std::string& unit) {
      all[key].push_back(e);
      print_error(label, e.mae, e.rmse, unit);
    };
    std::vector<int64_t> tested(static_cast<std::size_t>(n));
    std::iota(tested.begin(), tested.end(), int64_t{0});
    const data::System labels = data::take_frames(system, tested);  // resident, whatever the backing
    const std::string header = fmt::format("# {}\n", path);
    if (system.has_energy()) {
      const auto& label = labels.energy;
      report("e", "Energy", error_of(e_pred, label, 1.0), "eV");
      report("e_atom", "Energy/", error_of(e_pred, label, 1.0 / natoms), "eV");
      detail["e.out"] += header + "# data_e pred_e\n" + columns(label, e_pred, 1, 1.0);
      detail["e_peratom.out"] += header + "# data_e pred_e\n" + columns(label, e_pred, 1, 1.0 / natoms);
    }
    if (system.has_force()) {
      const auto& label = labels.force;
      report("f", "Force", error_of(f_pred, label, 1.0), "eV/A");
      detail["f.out"] += header + "# data_fx data_fy data_fz pred_fx pred_fy pred_fz\n" + columns(label, f_pred, 3, 1.0);
    }
    if (system.has_virial()) {
      const auto& label = labels.virial;
      report("v", "Virial", error_of(v_pred, label, 1.0), "eV");
      report("v_atom", "Virial/", error_of(v_pred, label, 1.0 / natoms), "eV");
      const std::string names = "# data_vxx data_vxy data_vxz data_vyx data_vyy data_vyz data_vzx data_vzy data_vzz "
                                "pred_vxx pred_vxy pred_vxz pred_vyx pred_vyy pred_vyz pred_vzx pred_vzy pred_vzz\n";
      detail["v.out"] += header + names + columns(label, v_pred, 9, 1.0);
      detail["v_peratom.out"] += header + names + columns(label, v_pred, 9, 1.0 / natoms);
    }
    fmt::print("# -----------------------------------------------\n");
  }
  // As dp test: MAE averaged and MSE averaged with weights = number of values of each system.
  fmt::print("# ----------weighted average of errors-----------\n# number of systems : {}\n", systems.size());
  const std::vector<std::tuple<std::string, std::string, std::string>> order = {
      {"e", "Energy", "eV"}, {"e_atom", "Energy/", "eV"}, {"f", "Force", "eV/A"},
      {"v", "Virial", "eV"}, {"v_atom", "Virial/", "eV"}};
  for (const auto& [key, label, unit] : order) {
    if (!all.count(key)) continue;
    double mae = 0, mse = 0, count = 0;
    for (const auto& e : all.at(key)) {
      mae += e.mae * static_cast<double>(e.count);
      mse += e.rmse * e.rmse * static_cast<double>(e.count);
      count += static_cast<double>(e.count);
    }
    print_error(label, mae / count, std::sqrt(mse / count), unit);
  }
  fmt::print("# -----------------------------------------------\n");
  if (!options.detail.empty())
    for (const auto& [suffix, text] : detail) write_file_atomic(options.detail + "." + suffix, text);
}

}  // namespace

void add_test_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("test", "test a model against labelled systems (DeePMD-kit's dp test)");
  auto options = std::make_shared<TestOptions>();
  cmd->add_option("-m,--model", options->model, "model or checkpoint file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-s,--system", options->systems, "systems, or folders searched for systems")->required();
  cmd->add_option("-n,--numb-test", options->numb_test, "frames tested per system (the first N)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-d,--detail-file", options->detail, "write PREFIX.e.out, .f.out, .v.out (label vs prediction)");
  cmd->add_option("--model-branch,--head", options->head, "the head (task) to test; required with several heads");
  cmd->add_option("--device", options->device, "where the model runs: cpu, cuda or cuda:N")->capture_default_str();
  cmd->callback([options] {
    run_or_exit([&] { run_test(*options); });
  });
}

}  // namespace atomforge::cli
