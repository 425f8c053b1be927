#pragma once
// Shared helpers of the tests that build models in process: bundled frames, small models, model
// files, energy evaluation.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../inputs_test_util.hpp"
#include "core/config_schema.hpp"
#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"
#include "model/registry.hpp"

namespace atomforge::testing {

// One frame of a bundled system as a one-frame System.
inline data::System single_frame(const std::string& relative, int64_t frame) {
  const data::System all = data::read_deepmd_system(bundled(relative));
  data::System s = all;
  s.nframes = 1;
  const int64_t n = all.natoms();
  s.coord.assign(all.frame_coord(frame), all.frame_coord(frame) + 3 * n);
  s.box.assign(all.box.begin() + 9 * frame, all.box.begin() + 9 * frame + 9);
  s.energy = all.has_energy() ? std::vector<double>{all.energy[frame]} : std::vector<double>{};
  s.force = all.has_force() ? std::vector<double>(all.force.begin() + 3 * n * frame, all.force.begin() + 3 * n * (frame + 1))
                            : std::vector<double>{};
  s.virial = all.has_virial() ? std::vector<double>(all.virial.begin() + 9 * frame, all.virial.begin() + 9 * frame + 9)
                              : std::vector<double>{};
  return s;
}

// A single-head model of `descriptor` (its input.json section) with a small fitting net.
inline std::unique_ptr<model::EnergyModel> model_with(const std::vector<std::string>& type_map,
                                                      nlohmann::ordered_json descriptor,
                                                      const std::string& precision = "float64") {
  descriptor["precision"] = precision;
  nlohmann::ordered_json config = {{"type_map", type_map},
                                   {"descriptor", descriptor},
                                   {"fitting_net", {{"neuron", {16, 16}}, {"precision", precision}}}};
  return std::make_unique<model::EnergyModel>(
      model::EnergyModel::single_task_config(config::resolve(model::model_schema(), config)), 7);
}

// A small se_e2_a model; `extra` overrides descriptor keys.
inline std::unique_ptr<model::EnergyModel> small_model(const std::vector<std::string>& type_map,
                                                       const std::vector<int64_t>& sel, double rcut,
                                                       const nlohmann::ordered_json& extra = {},
                                                       const std::string& precision = "float64") {
  nlohmann::ordered_json descriptor = {{"type", "se_e2_a"}, {"sel", sel},          {"rcut", rcut},
                                       {"rcut_smth", rcut - 2.0}, {"neuron", {4, 8, 16}}, {"axis_neuron", 4},
                                       {"resnet_dt", true}};
  for (auto& [k, v] : extra.items()) descriptor[k] = v;
  return model_with(type_map, descriptor, precision);
}

// A freshly initialised network is almost flat (forces ~1e-5 eV/A), which would drown finite
// differences in rounding noise. Scaling the weight matrices gives a rugged surface with forces of
// order 0.1-1 eV/A, like a trained model's.
inline void roughen(model::EnergyModel& m, double factor) {
  for (auto& [name, tensor] : m.parameters().parameters()) {
    if (name.size() > 2 && name.compare(name.size() - 2, 2, ".w") == 0) {
      at::NoGradGuard guard;
      tensor->mul_(factor);
    }
  }
}

// The model (or checkpoint) file at `path`.
inline std::unique_ptr<model::EnergyModel> load_model(const std::string& path) {
  return model::EnergyModel::load(load_tensor_file(path), path);
}

// `m` written as a model file (what `atomforge freeze` writes).
inline void save_model(const model::EnergyModel& m, const std::string& path) {
  TensorFile file;
  m.save(file);
  save_tensor_file(path, file);
}

// A tensor's values as float64, in row-major order.
inline std::vector<double> values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

inline double energy_of(const model::EnergyModel& m, const data::System& s) {
  return m.evaluate(m.prepare(s, {0}), false).energy.item<double>();
}

}  // namespace atomforge::testing
