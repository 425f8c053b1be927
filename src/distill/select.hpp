#pragma once
// Selection of explored frames for labelling, and their train/validation split.
#include <cstdint>
#include <string>
#include <vector>

#include "data/system.hpp"
#include "distill/distill_input.hpp"

namespace atomforge::distill {

struct Selection {
  // One system per composition (same atoms in the same order, same periodicity), named by it.
  std::vector<std::string> names;
  std::vector<data::System> train, valid;  // parallel to names; a composition may have no valid frames
  int64_t explored = 0, dropped_max_force = 0, dropped_max_frames = 0;
};

// Largest atomic force norm of frame `f` (eV/A).
double max_atomic_force(const data::System& system, int64_t f);

// Drops frames above max_force, keeps at most max_frames evenly spaced over all runs, groups the
// rest by composition and holds out a seeded random validation_fraction of each composition
// (rounded; at least one frame stays for training). Errors when nothing is held out.
Selection select_frames(const std::vector<data::System>& runs, const SelectOptions& o);

}  // namespace atomforge::distill
