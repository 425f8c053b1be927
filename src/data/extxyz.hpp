#pragma once
// Extended XYZ in ASE's convention: line 1 natoms; line 2 key=value pairs with Lattice="ax ay az
// bx by bz cx cy cz", Properties=species:S:1:pos:R:3[:forces:R:3...], energy=, virial="9 values"
// or stress="9 or 6 (Voigt xx yy zz yz xz xy) values" (stress = -virial/volume, eV/A^3),
// pbc="T T T", optional velocities:R:3 in Angstrom/fs (atomforge md's convention; ASE's momenta
// are not read). Consecutive frames with the same species sequence form one System.
#include <string>
#include <vector>

#include "data/system.hpp"

namespace atomforge::data {

std::vector<System> read_extxyz(const std::string& path);
// Writes every frame of `system` (labels it has are written too), atomically.
void write_extxyz(const std::string& path, const System& system);
// Appends one frame to an open trajectory text (used by MD); `types` index `type_map`.
std::string format_extxyz_frame(const std::vector<std::string>& type_map, const std::vector<int32_t>& types,
                                const double* coord, const double* box, bool pbc, const double* energy,
                                const double* force, const double* virial, const double* velocity = nullptr);

}  // namespace atomforge::data
