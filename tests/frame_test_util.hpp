#pragma once
// Frames as the C API and the LAMMPS plugin take them: flat coordinates, the box's rows and the
// model's type indices.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "data/system.hpp"

namespace atomforge::testing {

struct Frame {
  int natoms = 0;
  std::vector<double> coord, box;  // box: rows a, b, c; empty: isolated
  std::vector<int> types;
};

// Frame `frame` of the system at `system_path`, its types numbered as in `type_map`.
inline Frame load_frame(const std::string& system_path, int frame, const std::vector<std::string>& type_map) {
  const data::System system = data::read_deepmd_system(system_path);
  Frame f;
  f.natoms = static_cast<int>(system.natoms());
  f.coord.assign(system.frame_coord(frame), system.frame_coord(frame) + 3 * f.natoms);
  if (system.pbc) f.box.assign(system.frame_box(frame), system.frame_box(frame) + 9);
  for (int32_t t : data::map_types(system, type_map)) f.types.push_back(t);
  return f;
}

// The atoms wrapped into `f`'s box, which must be orthorhombic.
inline void wrap_into_box(Frame& f) {
  for (int i = 0; i < f.natoms; ++i) {
    for (int c = 0; c < 3; ++c) {
      const double length = f.box[4 * c];
      f.coord[3 * i + c] -= std::floor(f.coord[3 * i + c] / length) * length;
    }
  }
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace atomforge::testing
