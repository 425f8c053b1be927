#include "md/run_md.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <filesystem>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/logging.hpp"
#include "core/tensor_file.hpp"
#include "data/extxyz.hpp"
#include "md/elements.hpp"
#include "md/integrators.hpp"
#include "md/model_forces.hpp"
#include "md/msd.hpp"
#include "md/rdf.hpp"
#include "md/start_frame.hpp"
#include "model/device.hpp"
#include "model/energy_model.hpp"

namespace atomforge::md {

namespace {

std::string chosen_head(const model::EnergyModel& model, const MdOptions& o) {
  if (o.head.empty()) return model.only_head();
  if (!model.has_head(o.head)) {
    std::string heads;
    for (const auto& h : model.heads()) heads += (heads.empty() ? "" : ", ") + h;
    fail("'{}' has no head '{}' (heads: {})", o.model, o.head, heads);
  }
  return o.head;
}

std::unique_ptr<Integrator> make_integrator(const MdOptions& o, int64_t natoms) {
  if (o.ensemble == "langevin") return std::make_unique<Langevin>(o.timestep_fs, o.temperature, o.tau_fs, o.seed + 1);
  if (o.ensemble == "nose-hoover")
    return std::make_unique<NoseHooverChain>(o.timestep_fs, o.temperature, o.tau_fs, o.chain, natoms);
  return std::make_unique<VelocityVerlet>(o.timestep_fs);
}

void initial_velocities(State& s, const data::System& start, const MdOptions& o, int64_t ndof) {
  Gaussian gaussian(o.seed);
  if (o.initial_temperature) {
    maxwell_boltzmann(s, *o.initial_temperature, ndof, gaussian);
  } else if (!start.velocity.empty()) {
    s.velocity = start.velocity;
    remove_total_momentum(s);
  } else {
    maxwell_boltzmann(s, o.ensemble == "nve" ? 0.0 : o.temperature, ndof, gaussian);
  }
}

bool due(int64_t step, int64_t every, int64_t start = 0) { return every > 0 && step >= start && step % every == 0; }

}  // namespace

MdSummary run_md(const MdOptions& o, const std::string& output_dir) {
  const auto model = model::EnergyModel::load(load_tensor_file(o.model), o.model);
  model->to(model::resolve_device(o.device, "device"));
  const std::string head = chosen_head(*model, o);
  const data::System start = read_start_frame(o.start_file, o.start_frame);
  const std::vector<int32_t> types = data::map_types(start, model->type_map());
  const int64_t natoms = start.natoms();
  if (natoms < 2) fail("'{}': molecular dynamics needs at least 2 atoms", start.path);
  if (o.rdf_every > 0 && !start.pbc) fail("rdf needs a periodic cell; '{}' is not periodic", start.path);

  State s;
  s.position = start.coord;
  for (int32_t t : types) s.mass.push_back(atomic_mass(model->type_map()[t]));
  const std::unique_ptr<Integrator> integrator = make_integrator(o, natoms);
  const int64_t ndof = integrator->degrees_of_freedom(natoms);
  initial_velocities(s, start, o, ndof);
  std::array<double, 9> box{};
  if (start.pbc) std::copy(start.box.begin(), start.box.end(), box.begin());
  ModelForces forces(*model, head, types, box, start.pbc, o.skin);
  const ForceFunction compute_forces = std::ref(forces);  // not a copy: the neighbour list is reused
  compute_forces(s);

  std::filesystem::create_directories(output_dir);
  const auto out = [&](const std::string& name) { return (std::filesystem::path(output_dir) / name).string(); };
  std::string thermo = "# step time_fs T_K Epot_eV Ekin_eV Etot_eV Econserved_eV\n", trajectory;
  std::optional<Rdf> rdf;
  std::optional<Msd> msd;
  if (o.rdf_every > 0) rdf.emplace(types, model->type_map(), o.rdf_rmax, o.rdf_nbins);
  if (o.msd_every > 0) msd.emplace(types, model->type_map(), o.msd_every * o.timestep_fs);
  const auto write_outputs = [&] {
    write_file_atomic(out("thermo.out"), thermo);
    if (o.trajectory_every > 0) write_file_atomic(out(o.trajectory_file), trajectory);
  };

  const int64_t report_every = std::max<int64_t>(1, o.steps / 50);
  const auto started = std::chrono::steady_clock::now();
  double temp = 0;
  for (int64_t step = 0;; ++step) {
    const double ekin = kinetic_energy(s);
    temp = temperature(ekin, ndof);
    const double etot = s.potential_energy + ekin;
    if (due(step, o.thermo_every) || step == o.steps) {
      thermo += fmt::format("{} {:.4f} {:.4f} {:.10f} {:.10f} {:.10f} {:.10f}\n", step, step * o.timestep_fs, temp,
                            s.potential_energy, ekin, etot, etot + integrator->thermostat_energy());
    }
    if (due(step, o.trajectory_every)) {
      trajectory += data::format_extxyz_frame(model->type_map(), types, s.position.data(),
                                              start.pbc ? box.data() : nullptr, start.pbc, &s.potential_energy,
                                              s.force.data(), nullptr, s.velocity.data());
    }
    if (rdf && due(step, o.rdf_every, o.rdf_start)) rdf->sample(s.position.data(), box.data());
    if (msd && due(step, o.msd_every, o.msd_start)) msd->sample(s.position.data());
    if (step % report_every == 0 || step == o.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      progress_line(fmt::format("md step {}/{}  {:.1f} fs  T {:.1f} K  Etot {:.6f} eV  {:.1f} steps/s", step, o.steps,
                                step * o.timestep_fs, temp, etot, seconds > 0 ? step / seconds : 0.0));
      write_outputs();
    }
    if (step == o.steps) break;
    try {
      integrator->step(s, compute_forces);
    } catch (...) {
      rethrow_with_context(fmt::format("md step {}", step + 1));
    }
  }
  end_progress_line();
  write_outputs();
  if (rdf) write_file_atomic(out("rdf.out"), rdf->table());
  if (msd) write_file_atomic(out("msd.out"), msd->table());
  if (forces.truncated_centres() > 0) {
    spdlog::warn("{} atom-steps had more neighbours of some type than the model's sel: the nearest were kept",
                 forces.truncated_centres());
  }
  spdlog::info("md: {} steps, {} neighbour list builds; outputs in {}", o.steps, forces.builds(), output_dir);
  return {o.steps, forces.builds(), temp};
}

}  // namespace atomforge::md
