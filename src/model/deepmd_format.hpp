#pragma once
// DeePMD-kit's backend-neutral model format (what `dp convert-backend model.pth model.yaml`
// writes): a tree {model: {type_map, descriptor, fitting, @variables: {out_bias}}} whose arrays
// are inline {"@class": "np.ndarray", dtype, value} nodes. Only standard se_e2_a energy models
// map onto ours; anything else (other descriptors, fparam/aparam, exclude_types, case embeddings)
// is an error naming the key. HDF5 `.dp` files are not read (convert them to .yaml first).
//
// Facts of the layout this code relies on (from DeePMD-kit's serialize() methods):
// - a layer is {activation_function, resnet, @variables: {w (in, out), b (out), idt (out) or null}};
//   y = act(x w + b), times idt when given, plus x (out == in) or [x, x] (out == 2 in) when resnet;
// - embedding nets: descriptor.embeddings.networks, a NetworkCollection of ndim 1 (type_one_side,
//   index = neighbour type) or 2, where the net of (centre ti, neighbour tj) sits at ti + tj*ntypes;
// - fitting nets: fitting.nets.networks, ndim 1 (one per type) or 0 (one for all types); hidden
//   layers are resnet, the last layer is linear with one output;
// - atomic energy = net(D) + fitting.@variables.bias_atom_e[t, 0] + model.@variables.out_bias[0, t, 0].
#include <memory>
#include <string>

#include "model/energy_model.hpp"

namespace atomforge::model {

// A single-head model from a DeePMD-kit .yaml/.yml model file; errors name the file and key.
std::unique_ptr<EnergyModel> import_deepmd_model(const std::string& path);
// The same from YAML text; `source` names it in errors.
std::unique_ptr<EnergyModel> import_deepmd_model_text(const std::string& text, const std::string& source);

// A single-head se_e2_a model as DeePMD-kit's YAML layout (the head's bias becomes out_bias,
// bias_atom_e is zero). An error for other descriptors or several heads.
std::string export_deepmd_model_text(const EnergyModel& model);
void export_deepmd_model(const EnergyModel& model, const std::string& path);

}  // namespace atomforge::model
