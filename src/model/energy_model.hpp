#pragma once
// The energy model: descriptor + fitting net + per-type energy bias. Energy is the sum of atomic
// energies; forces F = -dE/dr and the virial W = -sum_edges dE/dr_ij (x) r_ij come from one
// autograd pass over the edge vectors (kept differentiable when training on forces).
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/descriptor.hpp"
#include "model/energy_fitting.hpp"
#include "model/model_input.hpp"

namespace atomforge::model {

struct Prediction {
  at::Tensor energy;       // (nframes)
  at::Tensor force;        // (nframes, nloc, 3)
  at::Tensor virial;       // (nframes, 9)
  at::Tensor atom_energy;  // (nframes, nloc)
};

class EnergyModel {
 public:
  // `config` is a resolved `model` section; `default_seed` seeds parts that name no seed.
  EnergyModel(nlohmann::ordered_json config, uint64_t default_seed);

  Prediction evaluate(const ModelInput& input, bool create_graph) const;
  ModelInput prepare(const data::System& system, const std::vector<int64_t>& frames) const;
  ModelInput prepare(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                     int64_t nframes) const;

  // Descriptor statistics from up to data_stat_nbatch x batch_size frames of each system.
  void compute_statistics(const std::vector<data::System>& systems, const std::vector<int64_t>& batch_sizes);
  // out_bias by least squares (minimum norm) of frame energies on per-type atom counts.
  void fit_out_bias(const std::vector<data::System>& systems);

  const nlohmann::ordered_json& config() const { return config_; }
  const std::vector<std::string>& type_map() const { return type_map_; }
  double rcut() const { return descriptor_->selection().rcut; }
  at::ScalarType dtype() const { return dtype_; }
  ParameterList& parameters() { return parameters_; }
  const ParameterList& parameters() const { return parameters_; }
  at::Tensor& out_bias() { return fitting_->out_bias(); }

  // Self-describing: format, type map, cut-off, precision, the model config and every array.
  void save(TensorFile& file) const;
  static std::unique_ptr<EnergyModel> load(const TensorFile& file, const std::string& source);

 private:
  nlohmann::ordered_json config_;
  std::vector<std::string> type_map_;
  at::ScalarType dtype_;
  std::unique_ptr<Descriptor> descriptor_;
  std::unique_ptr<EnergyFitting> fitting_;
  ParameterList parameters_;
};

at::ScalarType precision_dtype(const std::string& precision);

}  // namespace atomforge::model
