#pragma once
// A labelled system in DeePMD-kit's sense: frames of the same atoms in the same order.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atomforge::data {

// Frames kept outside a System's vectors, e.g. in a memory-mapped packed store
// (data/packed_store.hpp): where each per-frame array starts (null when the system lacks it), a
// checksum per frame (null: none) and what keeps the memory valid.
struct StoredFrames {
  std::shared_ptr<const void> owner;
  const double* coord = nullptr;
  const double* box = nullptr;
  const double* energy = nullptr;
  const double* force = nullptr;
  const double* virial = nullptr;
  const double* velocity = nullptr;
  const uint64_t* checksum = nullptr;  // over the frame's arrays in the order above
};

// Frames live either in the vectors below (resident) or in `stored` (the vectors stay empty and
// only the metadata is in memory). Read frames through the frame_* accessors or take_frames,
// which serve both; code that reads the vectors directly must take a resident() copy first.
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

  StoredFrames stored;

  int64_t natoms() const { return static_cast<int64_t>(types.size()); }
  bool is_stored() const { return stored.owner != nullptr; }
  bool has_box() const { return is_stored() ? stored.box != nullptr : !box.empty(); }
  bool has_energy() const { return is_stored() ? stored.energy != nullptr : !energy.empty(); }
  bool has_force() const { return is_stored() ? stored.force != nullptr : !force.empty(); }
  bool has_virial() const { return is_stored() ? stored.virial != nullptr : !virial.empty(); }
  bool has_velocity() const { return is_stored() ? stored.velocity != nullptr : !velocity.empty(); }
  // Frame f's values; meaningful only when the system has that array.
  const double* frame_coord(int64_t f) const { return (is_stored() ? stored.coord : coord.data()) + f * natoms() * 3; }
  const double* frame_box(int64_t f) const { return (is_stored() ? stored.box : box.data()) + f * 9; }
  const double* frame_energy(int64_t f) const { return (is_stored() ? stored.energy : energy.data()) + f; }
  const double* frame_force(int64_t f) const { return (is_stored() ? stored.force : force.data()) + f * natoms() * 3; }
  const double* frame_virial(int64_t f) const { return (is_stored() ? stored.virial : virial.data()) + f * 9; }
  const double* frame_velocity(int64_t f) const {
    return (is_stored() ? stored.velocity : velocity.data()) + f * natoms() * 3;
  }
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

// The frames `frames` of `system` (any order, repeats allowed) with every per-frame array, as a
// resident system. Frames of a stored system are checked against their checksums here.
System take_frames(const System& system, const std::vector<int64_t>& frames);
// The per-frame arrays, in this order: coord, box, energy, force, virial, velocity; `present`
// says whether `system` has the array.
struct FrameArray {
  const char* name;
  bool present;
  const double* (System::*frame)(int64_t) const;  // the frame's first value
  std::vector<double> System::*values;            // the resident vector
  const double* StoredFrames::*stored;            // the stored array
  int64_t per_frame;                              // values per frame
};
std::vector<FrameArray> frame_arrays(const System& system);

// Checksum of frame f's arrays (coord, then box, energy, force, virial, velocity where present):
// what a packed store records per frame.
uint64_t frame_checksum(const System& system, int64_t f);
// Fails, naming the system and frame, if stored frame f no longer matches its recorded checksum.
void verify_frame(const System& system, int64_t f);
// Every frame, resident (a copy of a resident system; a stored one read whole).
System resident(const System& system);
// Frames begin..end-1 as a system of their own: a view for a stored system, a copy otherwise.
System frame_slice(const System& system, int64_t begin, int64_t end);

// Writes a system as a DeePMD-kit npy folder (one set.000), atomically per file.
void write_deepmd_system(const std::string& dir, const System& system);

}  // namespace atomforge::data
