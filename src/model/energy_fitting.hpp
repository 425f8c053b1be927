#pragma once
// DeePMD-kit's energy fitting: one network per atom type maps the descriptor to an atomic
// energy, plus a per-type energy bias (out_bias) fitted to the data by least squares.
#include "core/config_schema.hpp"
#include "model/mlp.hpp"

namespace atomforge::model {

config::Node energy_fitting_schema();

class EnergyFitting {
 public:
  EnergyFitting(const nlohmann::ordered_json& config, int64_t ntypes, int64_t in_dim, uint64_t seed,
                at::ScalarType dtype);
  // Atomic energies (natoms) for descriptors (natoms, in_dim) of atoms with types atype.
  at::Tensor forward(const at::Tensor& descriptor, const at::Tensor& atype) const;
  void register_into(ParameterList& list, const std::string& prefix);
  at::Tensor& out_bias() { return out_bias_; }

 private:
  int64_t ntypes_;
  std::vector<Mlp> nets_;
  at::Tensor out_bias_;  // (ntypes)
};

}  // namespace atomforge::model
