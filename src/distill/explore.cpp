#include "distill/explore.hpp"

#include <algorithm>
#include <array>
#include <functional>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/logging.hpp"
#include "data/load_systems.hpp"
#include "md/elements.hpp"
#include "md/integrators.hpp"
#include "md/model_forces.hpp"
#include "md/state.hpp"

namespace atomforge::distill {

std::vector<data::System> read_start_frames(const std::vector<std::string>& paths, const std::vector<int64_t>& frames) {
  std::vector<data::System> starts;
  for (const auto& path : paths) {
    for (const auto& s : data::load_systems(path)) {
      for (const int64_t frame : frames) {
        const int64_t f = frame < 0 ? s.nframes + frame : frame;
        if (f < 0 || f >= s.nframes) fail("start.frames: frame {} out of range for '{}' ({} frames)", frame, s.path, s.nframes);
        data::System one = data::take_frames(s, {f});
        one.path = fmt::format("{} frame {}", s.path, f);
        starts.push_back(std::move(one));
      }
    }
  }
  return starts;
}

namespace {

data::System run_one(const model::EnergyModel& teacher, const std::string& head, const data::System& start,
                     double kelvin, uint64_t seed, const ExploreOptions& o, const std::string& label) {
  const std::vector<int32_t> types = data::map_types(start, teacher.type_map());
  if (start.natoms() < 2) fail("'{}': molecular dynamics needs at least 2 atoms", start.path);
  md::State s;
  s.position = start.coord;
  for (int32_t t : types) s.mass.push_back(md::atomic_mass(teacher.type_map()[t]));
  md::Langevin integrator(o.timestep_fs, kelvin, o.tau_fs, seed + 1);
  md::Gaussian gaussian(seed);
  md::maxwell_boltzmann(s, kelvin, integrator.degrees_of_freedom(s.natoms()), gaussian);
  std::array<double, 9> box{};
  if (start.pbc) std::copy(start.box.begin(), start.box.end(), box.begin());
  md::ModelForces forces(teacher, head, types, box, start.pbc, o.skin);
  const md::ForceFunction compute_forces = std::ref(forces);  // not a copy: the neighbour list is reused
  compute_forces(s);

  data::System out;
  out.path = fmt::format("{} at {} K", start.path, kelvin);
  out.type_map = teacher.type_map();
  out.types = types;
  out.pbc = start.pbc;
  for (int64_t step = 1; step <= o.steps; ++step) {
    try {
      integrator.step(s, compute_forces);
    } catch (...) {
      rethrow_with_context(fmt::format("explore: {} step {}", out.path, step));
    }
    if (step % o.every != 0) continue;
    out.coord.insert(out.coord.end(), s.position.begin(), s.position.end());
    if (start.pbc) out.box.insert(out.box.end(), box.begin(), box.end());
    out.energy.push_back(s.potential_energy);
    out.force.insert(out.force.end(), s.force.begin(), s.force.end());
    ++out.nframes;
    progress_line(fmt::format("explore {}: step {}/{}  T {:.0f} K", label, step, o.steps,
                              md::temperature(md::kinetic_energy(s), integrator.degrees_of_freedom(s.natoms()))));
  }
  return out;
}

}  // namespace

std::vector<data::System> explore(const model::EnergyModel& teacher, const std::string& head,
                                  const std::vector<data::System>& starts, const ExploreOptions& o) {
  std::vector<data::System> runs;
  const std::size_t total = starts.size() * o.temperatures.size();
  for (const auto& start : starts) {
    for (const double kelvin : o.temperatures) {
      const std::string label = fmt::format("run {}/{} ({} K)", runs.size() + 1, total, kelvin);
      runs.push_back(run_one(teacher, head, start, kelvin, o.seed + runs.size(), o, label));
    }
  }
  end_progress_line();
  return runs;
}

}  // namespace atomforge::distill
