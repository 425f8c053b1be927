#pragma once
// Test inputs that need neither torch nor the atomforge binary (so any test program can include
// this): bundled data, small training inputs and small model sections. The defaults describe
// production-sized models; these build and train in seconds.
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atomforge::testing {

inline std::string bundled(const std::string& relative) {
  return std::string(ATOMFORGE_SOURCE_DIR) + "/examples/data/" + relative;
}

// A small, fast water input; callers adjust keys.
inline nlohmann::ordered_json small_water_input(const std::vector<std::string>& train,
                                                const std::vector<std::string>& valid) {
  return nlohmann::ordered_json::parse(R"({
    "model": {
      "type_map": ["O", "H"],
      "descriptor": {"type": "se_e2_a", "sel": [24, 48], "rcut": 4.0, "rcut_smth": 0.5,
                     "neuron": [4, 8, 16], "axis_neuron": 4, "seed": 1},
      "fitting_net": {"neuron": [16, 16], "seed": 2}
    },
    "learning_rate": {"start_lr": 0.005, "stop_lr": 0.0001, "decay_steps": 20},
    "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
    "training": {
      "training_data": {"systems": [], "batch_size": 1},
      "validation_data": {"systems": [], "batch_size": 1, "numb_btch": 2},
      "numb_steps": 40, "seed": 3, "disp_freq": 5, "save_freq": 20
    }})")
      .patch(nlohmann::ordered_json::array(
          {{{"op", "replace"}, {"path", "/training/training_data/systems"}, {"value", train}},
           {{"op", "replace"}, {"path", "/training/validation_data/systems"}, {"value", valid}}}));
}

// small_water_input on the bundled water: trains on data_0, validates on data_3.
inline nlohmann::ordered_json small_water_input() {
  return small_water_input({bundled("water/data_0")}, {bundled("water/data_3")});
}

// Small graph trunks (descriptor sections).
inline nlohmann::ordered_json small_painn(double rcut) {
  return {{"type", "painn"}, {"rcut", rcut}, {"features", 8}, {"layers", 2}, {"radial_basis", 6}};
}
inline nlohmann::ordered_json small_dimenet(double rcut) {
  return {{"type", "dimenet"},     {"rcut", rcut},        {"features", 8},       {"layers", 2},
          {"triplet_features", 4}, {"basis_features", 4}, {"out_features", 8},   {"radial_basis", 4},
          {"angular_basis", 3},    {"output_layers", 1},  {"residuals_after_skip", 1}};
}

// examples/multitask/pretrain.json (tasks gfn1 and gfnff) on the given systems.
inline nlohmann::ordered_json multitask_example_input(const std::string& gfn1_train, const std::string& gfn1_valid,
                                                      const std::string& gfnff_train,
                                                      const std::string& gfnff_valid) {
  std::ifstream file(std::string(ATOMFORGE_SOURCE_DIR) + "/examples/multitask/pretrain.json");
  auto input = nlohmann::ordered_json::parse(file);
  auto& dict = input["training"]["data_dict"];
  dict["gfn1"]["training_data"]["systems"] = gfn1_train;
  dict["gfn1"]["validation_data"]["systems"] = gfn1_valid;
  dict["gfnff"]["training_data"]["systems"] = gfnff_train;
  dict["gfnff"]["validation_data"]["systems"] = gfnff_valid;
  return input;
}

// multitask_example_input on the bundled GFN1-xTB and GFN-FF molecules.
inline nlohmann::ordered_json multitask_example_input() {
  return multitask_example_input(bundled("mf/gfn1/train"), bundled("mf/gfn1/valid"), bundled("mf/gfnff/train"),
                                 bundled("mf/gfnff/valid"));
}

}  // namespace atomforge::testing
