#pragma once
// What the report says: a model's errors against labelled systems, and its time per frame.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config_schema.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::distill {

// Root mean square errors over all frames of all systems, for the labels they have.
struct Accuracy {
  int64_t frames = 0;
  std::optional<double> energy_rmse_per_atom;  // eV/atom
  std::optional<double> force_rmse;            // eV/A, per component
  std::optional<double> virial_rmse_per_atom;  // eV/atom
  config::json to_json() const;
};

Accuracy accuracy(const model::EnergyModel& model, const std::string& head, const std::vector<data::System>& systems,
                  int64_t chunk);

// Root mean square of the force labels (eV/A, per component): the scale of force_rmse.
double force_rms(const std::vector<data::System>& systems);

// Median seconds of `repeats` evaluations (neighbour list, energy, forces, virial) of the first
// frame of `system`, after one untimed warm-up.
double seconds_per_frame(const model::EnergyModel& model, const std::string& head, const data::System& system,
                         int64_t repeats);

}  // namespace atomforge::distill
