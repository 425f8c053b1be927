#pragma once
// Exploration: Langevin molecular dynamics with the teacher from each start frame at each
// temperature, sampling frames along the way (md's integrator and skin-list forces, in process).
#include <string>
#include <vector>

#include "data/system.hpp"
#include "distill/distill_input.hpp"
#include "model/energy_model.hpp"

namespace atomforge::distill {

// The start frames: `frames` of every system under each path, as one-frame systems.
std::vector<data::System> read_start_frames(const std::vector<std::string>& paths, const std::vector<int64_t>& frames);

// One system per (start frame, temperature) run, in that order, with the frames taken every
// `o.every` steps: coordinates (unwrapped), box, and the teacher's energy and forces from the
// dynamics (used to select frames; labelling evaluates the teacher again, with virials). Types
// index the teacher's type map.
std::vector<data::System> explore(const model::EnergyModel& teacher, const std::string& head,
                                  const std::vector<data::System>& starts, const ExploreOptions& o);

}  // namespace atomforge::distill
