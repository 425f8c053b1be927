#pragma once
// Standard atomic weights (amu) by element symbol, for molecular dynamics.
#include <string>
#include <vector>

namespace atomforge::md {

// Standard atomic weights from core/elements.hpp; an error naming an unknown element.
double atomic_mass(const std::string& element);
std::vector<double> atomic_masses(const std::vector<std::string>& elements);

}  // namespace atomforge::md
