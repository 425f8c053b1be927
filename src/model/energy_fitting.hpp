#pragma once
// DeePMD-kit's energy fitting: one network per atom type maps the descriptor to an atomic
// energy (or one network for all types, mixed_types). With dim_case_embd > 0 one fitting net serves several tasks (fidelities): a one-hot
// task vector is appended to its input, so the first layer learns a per-task embedding. The
// per-type energy bias lives in each head (EnergyModel), never in a shared fitting net.
#include "core/config_schema.hpp"
#include "model/mlp.hpp"

namespace atomforge::model {

config::Node energy_fitting_schema();

class EnergyFitting {
 public:
  // With `mixed_types` one network serves every type (the descriptor tells elements apart).
  EnergyFitting(const nlohmann::ordered_json& config, int64_t ntypes, int64_t in_dim, bool mixed_types, uint64_t seed,
                at::ScalarType dtype);
  // Atomic energies (natoms), without bias, for descriptors (natoms, in_dim) of atoms with types
  // atype; `task_case` selects the one-hot task vector when dim_case_embd > 0.
  at::Tensor forward(const at::Tensor& descriptor, const at::Tensor& atype, int64_t task_case) const;
  void register_into(ParameterList& list, const std::string& prefix);
  int64_t dim_case_embd() const { return dim_case_embd_; }

 private:
  int64_t ntypes_;
  int64_t dim_case_embd_;
  std::vector<Mlp> nets_;
};

}  // namespace atomforge::model
