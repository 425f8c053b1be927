#include "data/system.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/checksum.hpp"
#include "core/error.hpp"
#include "data/npy.hpp"

namespace atomforge::data {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_tokens(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> tokens;
  std::string token;
  while (in >> token) tokens.push_back(token);
  return tokens;
}

std::vector<int32_t> read_types(const std::string& path) {
  std::vector<int32_t> types;
  for (const std::string& token : read_tokens(path)) {
    int32_t value = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (ec != std::errc() || end != token.data() + token.size()) {
      fail("'{}': atom {} has type '{}', which is not an integer", path, types.size(), token);
    }
    if (value < 0) fail("'{}': atom {} has negative type {}", path, types.size(), value);
    types.push_back(value);
  }
  if (types.empty()) fail("'{}': no atoms (the file is empty)", path);
  return types;
}

void check_types_in_map(const System& system, const std::string& type_raw, const std::string& type_map_raw) {
  if (system.type_map.empty()) return;
  for (std::size_t i = 0; i < system.types.size(); ++i) {
    if (system.types[i] >= static_cast<int32_t>(system.type_map.size())) {
      fail("'{}': atom {} has type {}, but '{}' lists only {} elements", type_raw, i, system.types[i], type_map_raw,
           system.type_map.size());
    }
  }
}

std::vector<std::string> list_sets(const std::string& dir) {
  std::vector<std::string> sets;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("set.", 0) == 0) sets.push_back(name);
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) fail("'{}': no set.* folder in the system", dir);
  return sets;
}

// DeePMD-kit reshapes each array to (nframes, per_frame), so any layout with the right frame
// count and size is accepted (e.g. coord as nframes x natoms x 3, energy as nframes x 1).
std::vector<double> frames_of(const NpyArray& array, const std::string& path, int64_t nframes, int64_t per_frame,
                              const char* what) {
  const bool frames_ok = array.shape.size() <= 1 || array.shape[0] == nframes;
  if (!frames_ok || array.numel() != nframes * per_frame) {
    std::string shape;
    for (std::size_t i = 0; i < array.shape.size(); ++i) shape += (i ? " x " : "") + std::to_string(array.shape[i]);
    fail("'{}': expected {} frames x {} values ({}), got shape ({})", path, nframes, per_frame, what, shape);
  }
  return array.values;
}

void append(std::vector<double>& to, const std::vector<double>& from) { to.insert(to.end(), from.begin(), from.end()); }

// Which optional files the first set holds. Every later set must hold the same ones: a label in
// only some sets would silently leave frames unlabelled.
struct SetLayout {
  std::string first_set;
  bool box = false, energy = false, force = false, virial = false;
};

bool optional_file(const fs::path& dir, const std::string& file, const SetLayout* first, bool in_first) {
  const bool present = fs::exists(dir / file);
  if (first != nullptr && present != in_first) {
    fail("'{}' {} {}, but '{}' {}: it must be in every set or in none", dir.string(), present ? "has" : "lacks", file,
         first->first_set, in_first ? "has it" : "does not");
  }
  return present;
}

// Reads one set.* folder onto the end of `system`. `first` is null for the first set, whose
// layout is recorded in `layout`.
void read_set(System& system, const fs::path& dir, const SetLayout* first, SetLayout& layout) {
  const int64_t natoms = system.natoms();
  const std::string coord_path = (dir / "coord.npy").string();
  if (!fs::exists(coord_path)) fail("'{}': missing coord.npy", dir.string());
  const NpyArray coord = read_npy(coord_path);
  // DeePMD-kit's frame count: a 1-d coord.npy is a single frame.
  const int64_t nframes = coord.shape.size() <= 1 ? 1 : coord.shape[0];
  if (nframes == 0) fail("'{}': no frames", coord_path);
  append(system.coord, frames_of(coord, coord_path, nframes, natoms * 3, "natoms x 3 coordinates"));

  const auto read_optional = [&](const std::string& file, bool in_first, std::vector<double>& into,
                                 int64_t per_frame, const char* what) {
    if (!optional_file(dir, file, first, in_first)) return false;
    const std::string path = (dir / file).string();
    append(into, frames_of(read_npy(path), path, nframes, per_frame, what));
    return true;
  };
  if (system.pbc && !fs::exists(dir / "box.npy")) {
    fail("'{}': missing box.npy (only systems with a `nopbc` file may omit it)", dir.string());
  }
  layout.box = read_optional("box.npy", first && first->box, system.box, 9, "3 x 3 cell");
  if (!layout.box) system.box.resize(system.box.size() + static_cast<std::size_t>(nframes) * 9, 0.0);
  layout.energy = read_optional("energy.npy", first && first->energy, system.energy, 1, "energy");
  layout.force = read_optional("force.npy", first && first->force, system.force, natoms * 3, "natoms x 3 forces");
  layout.virial = read_optional("virial.npy", first && first->virial, system.virial, 9, "3 x 3 virial");
  system.nframes += nframes;
}

bool is_system_dir(const fs::path& dir) { return fs::is_regular_file(dir / "type.raw"); }

// std::filesystem reports unreadable folders by its own exception; users get an atomforge::Error
// naming the path like every other data problem.
template <typename Fn>
auto with_filesystem_errors(const std::string& path, Fn&& fn) {
  try {
    return fn();
  } catch (const fs::filesystem_error& e) {
    fail("'{}': {}", path, e.what());
  }
}

System read_system(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    fail("system folder '{}' {}", dir, fs::exists(dir) ? "is not a folder" : "does not exist");
  }
  const fs::path root(dir);
  System system;
  system.path = dir;
  const std::string type_raw = (root / "type.raw").string();
  if (!fs::exists(type_raw)) fail("'{}': missing type.raw (not a DeePMD-kit system folder)", dir);
  system.types = read_types(type_raw);
  const std::string type_map_raw = (root / "type_map.raw").string();
  if (fs::exists(type_map_raw)) system.type_map = read_tokens(type_map_raw);
  check_types_in_map(system, type_raw, type_map_raw);
  system.pbc = !fs::exists(root / "nopbc");

  SetLayout first;
  for (const std::string& set : list_sets(dir)) {
    SetLayout layout;
    layout.first_set = (root / set).string();
    const bool is_first = system.nframes == 0;
    read_set(system, root / set, is_first ? nullptr : &first, layout);
    if (is_first) first = layout;
  }
  return system;
}

std::vector<std::string> find_system_folders(const std::string& root) {
  if (!fs::exists(root)) fail("data path '{}' does not exist", root);
  if (is_system_dir(root)) return {root};
  if (!fs::is_directory(root)) fail("data path '{}' is neither a system folder nor a folder of systems", root);
  std::vector<std::string> found;
  // Symlinked folders are not descended into (a link cycle would never end), but a link that
  // points at a system folder is still found, since is_directory() follows it.
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && is_system_dir(it->path())) found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  if (found.empty()) fail("data path '{}' holds no system (no folder with a type.raw below it)", root);
  return found;
}

}  // namespace

System read_deepmd_system(const std::string& dir) {
  return with_filesystem_errors(dir, [&] { return read_system(dir); });
}

std::vector<std::string> find_systems(const std::string& root) {
  return with_filesystem_errors(root, [&] { return find_system_folders(root); });
}

std::vector<int32_t> map_types(const System& system, const std::vector<std::string>& model_type_map) {
  std::vector<int32_t> mapped(system.types.size());
  if (system.type_map.empty()) {
    for (std::size_t i = 0; i < system.types.size(); ++i) {
      if (system.types[i] < 0 || system.types[i] >= static_cast<int32_t>(model_type_map.size())) {
        fail("system '{}' has no type_map.raw and atom {} has type {}, outside the model's {} types", system.path, i,
             system.types[i], model_type_map.size());
      }
      mapped[i] = system.types[i];
    }
    return mapped;
  }
  // Only elements that occur matter: a global type_map may list elements a system lacks.
  std::vector<int32_t> lookup(system.type_map.size(), -1);
  for (std::size_t t = 0; t < system.type_map.size(); ++t) {
    const auto it = std::find(model_type_map.begin(), model_type_map.end(), system.type_map[t]);
    if (it != model_type_map.end()) lookup[t] = static_cast<int32_t>(it - model_type_map.begin());
  }
  for (std::size_t i = 0; i < system.types.size(); ++i) {
    const int32_t t = system.types[i];
    if (t < 0 || t >= static_cast<int32_t>(lookup.size())) {
      fail("system '{}': atom {} has type {} outside its type_map of {} elements", system.path, i, t, lookup.size());
    }
    if (lookup[t] < 0) {
      std::string known;
      for (const std::string& e : model_type_map) known += (known.empty() ? "" : " ") + e;
      fail("system '{}' contains element '{}', which is not in the model's type_map [{}]", system.path,
           system.type_map[t], known);
    }
    mapped[i] = lookup[t];
  }
  return mapped;
}

namespace {

void check_sizes(const System& system, const std::string& dir) {
  const auto n = static_cast<std::size_t>(system.nframes);
  const auto na = static_cast<std::size_t>(system.natoms());
  const auto check = [&](const std::vector<double>& v, std::size_t per_frame, const char* what, bool optional) {
    if (optional && v.empty()) return;
    if (v.size() != n * per_frame) {
      fail("cannot write system '{}' to '{}': {} has {} values, expected {} frames x {}", system.path, dir, what,
           v.size(), n, per_frame);
    }
  };
  if (system.natoms() == 0 || system.nframes <= 0) {
    fail("cannot write system '{}' to '{}': it has no atoms or no frames", system.path, dir);
  }
  check(system.coord, 3 * na, "coord", false);
  check(system.box, 9, "box", system.box.empty() && !system.pbc);
  check(system.energy, 1, "energy", true);
  check(system.force, 3 * na, "force", true);
  check(system.virial, 9, "virial", true);
}

void write_system(const std::string& dir, const System& system) {
  check_sizes(system, dir);
  // Writing into a folder that already holds a system could leave its other sets or labels
  // behind, silently mixing two systems.
  if (fs::exists(dir) && !fs::is_empty(dir)) fail("'{}' already exists and is not empty; refusing to overwrite", dir);
  const fs::path root(dir);
  std::string types;
  for (const int32_t t : system.types) types += std::to_string(t) + "\n";
  write_file_atomic((root / "type.raw").string(), types);
  if (!system.type_map.empty()) {
    std::string map;
    for (const std::string& e : system.type_map) map += e + "\n";
    write_file_atomic((root / "type_map.raw").string(), map);
  }
  if (!system.pbc) write_file_atomic((root / "nopbc").string(), "");

  const fs::path set = root / "set.000";
  const int64_t n = system.nframes;
  const int64_t na3 = system.natoms() * 3;
  write_npy((set / "coord.npy").string(), {n, na3}, system.coord);
  if (!system.box.empty()) write_npy((set / "box.npy").string(), {n, 9}, system.box);
  if (system.has_energy()) write_npy((set / "energy.npy").string(), {n}, system.energy);
  if (system.has_force()) write_npy((set / "force.npy").string(), {n, na3}, system.force);
  if (system.has_virial()) write_npy((set / "virial.npy").string(), {n, 9}, system.virial);
}

}  // namespace

std::vector<FrameArray> frame_arrays(const System& s) {
  const int64_t n3 = 3 * s.natoms();
  return {{"coord", true, &System::frame_coord, &System::coord, &StoredFrames::coord, n3},
          {"box", s.has_box(), &System::frame_box, &System::box, &StoredFrames::box, 9},
          {"energy", s.has_energy(), &System::frame_energy, &System::energy, &StoredFrames::energy, 1},
          {"force", s.has_force(), &System::frame_force, &System::force, &StoredFrames::force, n3},
          {"virial", s.has_virial(), &System::frame_virial, &System::virial, &StoredFrames::virial, 9},
          {"velocity", s.has_velocity(), &System::frame_velocity, &System::velocity, &StoredFrames::velocity, n3}};
}

uint64_t frame_checksum(const System& system, int64_t f) {
  uint64_t h = kChecksumSeed;
  for (const FrameArray& a : frame_arrays(system)) {
    if (a.present) h = checksum64((system.*a.frame)(f), static_cast<std::size_t>(a.per_frame) * sizeof(double), h);
  }
  return h;
}

void verify_frame(const System& system, int64_t f) {
  if (system.is_stored() && system.stored.checksum != nullptr && frame_checksum(system, f) != system.stored.checksum[f]) {
    fail("'{}': frame {} is damaged (its checksum does not match the one written when it was packed); pack the data again",
         system.path, f);
  }
}

System take_frames(const System& system, const std::vector<int64_t>& frames) {
  System out;
  out.path = system.path;
  out.type_map = system.type_map;
  out.types = system.types;
  out.pbc = system.pbc;
  out.nframes = static_cast<int64_t>(frames.size());
  const std::vector<FrameArray> arrays = frame_arrays(system);
  for (const FrameArray& a : arrays) {
    if (a.present) (out.*a.values).reserve(frames.size() * static_cast<std::size_t>(a.per_frame));
  }
  for (const int64_t f : frames) {
    if (f < 0 || f >= system.nframes) fail("'{}': frame {} out of range ({} frames)", system.path, f, system.nframes);
    verify_frame(system, f);
    for (const FrameArray& a : arrays) {
      if (!a.present) continue;
      const double* from = (system.*a.frame)(f);
      (out.*a.values).insert((out.*a.values).end(), from, from + a.per_frame);
    }
  }
  return out;
}

System resident(const System& system) {
  std::vector<int64_t> all(static_cast<std::size_t>(system.nframes));
  std::iota(all.begin(), all.end(), int64_t{0});
  return take_frames(system, all);
}

System frame_slice(const System& system, int64_t begin, int64_t end) {
  if (begin < 0 || end > system.nframes || begin > end) {
    fail("'{}': frames {}..{} out of range ({} frames)", system.path, begin, end, system.nframes);
  }
  if (!system.is_stored()) {
    std::vector<int64_t> frames(static_cast<std::size_t>(end - begin));
    std::iota(frames.begin(), frames.end(), begin);
    return take_frames(system, frames);
  }
  System out = system;
  out.nframes = end - begin;
  for (const FrameArray& a : frame_arrays(system)) {
    if (a.present) out.stored.*a.stored += begin * a.per_frame;
  }
  if (out.stored.checksum != nullptr) out.stored.checksum += begin;
  return out;
}

void write_deepmd_system(const std::string& dir, const System& system) {
  with_filesystem_errors(dir, [&] { write_system(dir, system.is_stored() ? resident(system) : system); });
}

}  // namespace atomforge::data
