#pragma once
// Molecular dynamics units: Angstrom, fs, amu, eV, K.
//
// 1 amu A^2 / fs^2 = 1.66053906660e-27 kg x 1e-20 m^2 / 1e-30 s^2 = 1.66053906660e-17 J, and
// 1 eV = 1.602176634e-19 J, so 1 amu A^2/fs^2 = 103.642696... eV (CODATA 2018 amu; eV exact).
#include <cmath>

namespace atomforge::md {

inline constexpr double kAmuA2PerFs2InEv = 1.66053906660e-17 / 1.602176634e-19;
// Acceleration of a force in eV/A on a mass in amu, in A/fs^2.
inline constexpr double kEvPerAAmuInAPerFs2 = 1.0 / kAmuA2PerFs2InEv;
inline constexpr double kBoltzmannEvPerK = 8.617333262e-5;  // CODATA 2018, exact to the digits given

}  // namespace atomforge::md
