#pragma once
// Model predictions over every frame of a system, in chunks: the teacher's labels, and what
// the report compares against labels.
#include <cstdint>
#include <string>
#include <vector>

#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::distill {

struct Predictions {
  std::vector<double> energy;  // nframes, eV
  std::vector<double> force;   // nframes x natoms x 3, eV/A
  std::vector<double> virial;  // nframes x 9, eV
};

Predictions predict(const model::EnergyModel& model, const std::string& head, const data::System& system,
                    int64_t chunk);

// Replaces the system's energy, force and virial with the model's.
void label(const model::EnergyModel& teacher, const std::string& head, data::System& system, int64_t chunk);

}  // namespace atomforge::distill
