#include "md/elements.hpp"

#include "core/elements.hpp"

namespace atomforge::md {

double atomic_mass(const std::string& element) {
  return atomforge::atomic_mass(atomic_number(element, "no atomic mass for the type_map's element"));
}

std::vector<double> atomic_masses(const std::vector<std::string>& elements) {
  std::vector<double> masses;
  masses.reserve(elements.size());
  for (const auto& element : elements) masses.push_back(atomic_mass(element));
  return masses;
}

}  // namespace atomforge::md
