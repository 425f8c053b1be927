#pragma once
// DeePMD-kit's se_e2_a (DeepPot-SE) descriptor; math in ../shared/docs/deepmd-conventions.md.
#include <memory>

#include "core/config_schema.hpp"
#include "model/descriptor.hpp"
#include "model/mlp.hpp"

namespace atomforge::model {

config::Node se_e2_a_schema();
std::unique_ptr<Descriptor> make_se_e2_a(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
                                         at::ScalarType dtype);

class SeE2A : public Descriptor {
 public:
  SeE2A(const nlohmann::ordered_json& config, int64_t ntypes, uint64_t seed, at::ScalarType dtype);
  NeighborSelection selection() const override { return {rcut_, sel_}; }
  int64_t output_dim() const override { return neuron_.back() * axis_neuron_; }
  at::Tensor forward(const ModelInput& input) const override;
  bool per_centre() const override { return true; }
  void compute_statistics(const std::vector<ModelInput>& samples) override;
  void register_into(ParameterList& list, const std::string& prefix) override;

  // Unnormalised environment rows s(r) [1, x/r, y/r, z/r], (natoms, nnei, 4), zero for padding.
  at::Tensor environment(const ModelInput& input) const;

 private:
  double rcut_, rcut_smth_, env_protection_;
  std::vector<int64_t> sel_, offsets_;
  std::vector<int64_t> neuron_;
  int64_t axis_neuron_;
  int64_t ntypes_;
  bool type_one_side_;
  bool set_davg_zero_;
  std::vector<Mlp> embeddings_;  // [tj] or [ti * ntypes + tj]
  at::Tensor davg_, dstd_;        // (ntypes, nnei, 4)
};

}  // namespace atomforge::model
