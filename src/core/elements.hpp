#pragma once
// The periodic table as models and MD need it: element symbols <-> atomic numbers, and standard
// atomic weights. Type maps name elements by symbol (DeePMD-kit's convention); models that embed
// the element itself (graph trunks) and integrators (masses) go through here.
#include <string>

namespace atomforge {

constexpr int kMaxAtomicNumber = 118;

// 1..118 for a known symbol (case-sensitive, "H", "He", ...); an error naming `context` otherwise.
int atomic_number(const std::string& symbol, const std::string& context = "");
const std::string& element_symbol(int atomic_number);
// Standard atomic weight in amu (IUPAC 2021 abridged; mass number of the longest-lived isotope
// for elements without a stable one).
double atomic_mass(int atomic_number);

}  // namespace atomforge
