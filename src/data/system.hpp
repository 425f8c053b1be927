#pragma once
// A labelled system in DeePMD-kit's sense: frames of the same atoms in the same order.
#include <cstdint>
#include <string>
#include <vector>

namespace atomforge::data {

struct System {
  std::string path;                   // where it was read from (used in error messages)
  std::vector<std::string> type_map;  // element of each type index; empty when the source had none
  std::vector<int32_t> types;         // natoms; indices into type_map
  bool pbc = true;                    // false for DeePMD's `nopbc` systems
  int64_t nframes = 0;
  std::vector<double> coord;   // nframes x natoms x 3, Angstrom
  std::vector<double> box;     // nframes x 9, rows are cell vectors a, b, c; zeros when no box
  std::vector<double> energy;  // nframes, eV; empty when unlabelled
  std::vector<double> force;   // nframes x natoms x 3, eV/A; empty when unlabelled
  std::vector<double> virial;  // nframes x 9, eV, row-major xx xy xz yx ...; empty when unlabelled
  std::vector<double> velocity;  // nframes x natoms x 3, Angstrom/fs; extxyz only, empty when absent

  int64_t natoms() const { return static_cast<int64_t>(types.size()); }
  bool has_energy() const { return !energy.empty(); }
  bool has_force() const { return !force.empty(); }
  bool has_virial() const { return !virial.empty(); }
  const double* frame_coord(int64_t f) const { return coord.data() + f * natoms() * 3; }
  const double* frame_box(int64_t f) const { return box.data() + f * 9; }
};

// Reads one DeePMD-kit npy system folder: type.raw, optional type_map.raw, optional `nopbc`,
// every set.*/ folder in name order (coord.npy, box.npy — optional when nopbc — energy.npy,
// force.npy, optional virial.npy). Arrays of any supported npy type are promoted to double.
// A label file missing from every set leaves that label empty (unlabelled); one missing from
// only some sets is an error.
// Errors name the file and the inconsistency (shape mismatch, type index out of range, NaN...).
System read_deepmd_system(const std::string& dir);

// A path that holds type.raw is a system; any other folder is searched recursively for systems
// (sorted by path). Error if the path does not exist or holds no system.
std::vector<std::string> find_systems(const std::string& root);

// Per-atom type indices into `model_type_map`, matching elements by name. A system without a
// type_map uses its indices directly (DeePMD-kit's behaviour) and must stay within the map.
// Error names the system and the element the model does not know.
std::vector<int32_t> map_types(const System& system, const std::vector<std::string>& model_type_map);

// The frames `frames` of `system` (any order, repeats allowed) with every per-frame array.
System take_frames(const System& system, const std::vector<int64_t>& frames);

// Writes a system as a DeePMD-kit npy folder (one set.000), atomically per file.
void write_deepmd_system(const std::string& dir, const System& system);

}  // namespace atomforge::data
