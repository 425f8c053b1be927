#pragma once
// PaiNN (Schuett, Unke, Gastegger 2021): an equivariant message-passing trunk. Every atom carries
// F scalar features s and F vector features v (3 x F); each layer passes messages along the edges
// (scalar filters of a Bessel radial basis under a smooth envelope, times the neighbour's
// features and the edge direction) and then mixes scalars and vectors on each atom. Atoms start
// from an element embedding; the descriptor is the final s. All neighbours within rcut count.
// Each layer's sum of messages is divided by sqrt of the mean number of neighbours in the training
// data (NequIP's avg_num_neighbors), a constant stored with the model: summed over ~50 water
// neighbours, plain sums made an initialised model's forces 10-100x the DFT ones and its NVE
// blow up within steps. A constant, not each atom's own count, keeps the energy smooth at rcut.
// The direction term of the vector messages is the edge vector over rcut rather than the unit
// vector, whose turning over where two atoms meet made the forces of a model without learnt
// repulsion diverge in MD.
#include <vector>

#include "core/config_schema.hpp"
#include "core/thread_flag.hpp"
#include "model/descriptor.hpp"
#include "model/element_embedding.hpp"
#include "model/linear.hpp"

namespace atomforge::model {

config::Node painn_schema();
std::unique_ptr<Descriptor> make_painn(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map,
                                       uint64_t seed, at::ScalarType dtype);

// While alive, this thread's PaiNN evaluations sum the messages with libtorch's index operators,
// as on devices other than the CPU, instead of the fused loops: the reference the tests compare
// the fused path against.
using PaiNNIndexedMessagesScope = ThreadFlagScope<struct PaiNNIndexedMessagesTag>;

class PaiNN : public Descriptor {
 public:
  PaiNN(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
        at::ScalarType dtype);
  NeighborSelection selection() const override { return {rcut_, {}, false}; }
  int64_t output_dim() const override { return features_; }
  at::Tensor forward(const ModelInput& input) const override { return features(input).scalar; }
  // The mean number of neighbours per atom within rcut over the samples (normalise_messages).
  void compute_statistics(const std::vector<ModelInput>& samples) override;
  void register_into(ParameterList& list, const std::string& prefix) override;
  bool mixed_types() const override { return true; }
  bool splits_graph() const override { return true; }
  double receptive_field() const override { return rcut_ * static_cast<double>(layers_.size()); }
  // s and v (4F values per atom) before every layer but the first.
  GhostExchanges ghost_exchanges() const override {
    return {static_cast<int64_t>(layers_.size()) - 1, 4 * features_};
  }

  struct Features {
    at::Tensor scalar;  // (natoms, F)
    at::Tensor vector;  // (natoms, 3, F): rotates with the frame
  };
  Features features(const ModelInput& input) const;

 private:
  struct Layer {
    Linear message_in, message_out, filter;  // message: phi(s_j) * W(r_ij)
    Linear mix_u, mix_v, update_in, update_out;  // update: U v, V v, a(s, |V v|)
  };
  double rcut_;
  int64_t features_, radial_basis_, envelope_exponent_;
  bool normalise_messages_, smooth_directions_;
  at::Tensor avg_neighbours_;  // (1) buffer: messages are divided by its sqrt; 1 until the data statistics
  ElementEmbedding embedding_;
  std::vector<Layer> layers_;
};

}  // namespace atomforge::model
