#pragma once
// Standard atomic weights (amu) by element symbol, for molecular dynamics.
#include <string>
#include <vector>

namespace atomforge::md {

// Error naming the element when it is not in the table (H..Rn and the common heavier metals).
double atomic_mass(const std::string& element);
std::vector<double> atomic_masses(const std::vector<std::string>& elements);

}  // namespace atomforge::md
