#pragma once
// DimeNet++ (Gasteiger et al. 2020): a directional message-passing trunk on edges and triplets.
// Every edge ji carries a message m_ji; interaction blocks update it from the messages m_kj of
// the edges that end where it starts (triplets k -> j -> i), weighted by a radial basis of r_kj
// and an angular basis of the angle kji; output blocks pool the messages onto their centre atoms.
// The descriptor is the sum of the output blocks. Bases: Bessel functions of r under a smooth
// polynomial envelope, and (as a simplification of DimeNet's spherical Bessel functions)
// Legendre polynomials of cos(angle) times the radial basis of r_kj. Edge and triplet work is
// in tensors indexed by edge and triplet id, which graph parallelism splits.
#include <vector>

#include "core/config_schema.hpp"
#include "model/descriptor.hpp"
#include "model/element_embedding.hpp"
#include "model/gather_scatter.hpp"
#include "model/linear.hpp"

namespace atomforge::model {

config::Node dimenet_schema();
std::unique_ptr<Descriptor> make_dimenet(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map,
                                         uint64_t seed, at::ScalarType dtype);

// DimeNet++'s triplet sum: out[ji] = sum over the triplets t = (kj -> ji) of x[kj] *
// sbf_up(sbf_down(a(t) (x) rbf(kj))), the outer product of a triplet's angular basis a (L) and
// its edge kj's radial basis (K) flattened as l K + k. x (E, T), rbf (E, K), angular (nt, L);
// `part` as for the triplets' share.
// The triplet sum onto every edge ji of the messages x of the edges kj, gated by the angular
// basis of each triplet and the radial basis rbf of kj; x and rbf are rows of the edges the
// triplets' kj side numbers (a rank's own edges under graph parallelism), the result is (all
// edges, width) and, under graph parallelism, this rank's partial sum.
at::Tensor angular_triplet_sum(const at::Tensor& x, const at::Tensor& rbf, const at::Tensor& angular,
                               const Linear& sbf_down, const Linear& sbf_up, const RowPairs& triplets,
                               const GraphPartition& part);

class DimeNet : public Descriptor {
 public:
  DimeNet(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
          at::ScalarType dtype);
  NeighborSelection selection() const override { return {rcut_, {}, true}; }
  int64_t output_dim() const override { return out_features_; }
  at::Tensor forward(const ModelInput& input) const override;
  void compute_statistics(const std::vector<ModelInput>&) override {}
  void register_into(ParameterList& list, const std::string& prefix) override;
  bool mixed_types() const override { return true; }
  bool splits_graph() const override { return true; }
  // The embedding block sees one edge; each interaction block reaches one edge further.
  double receptive_field() const override { return rcut_ * static_cast<double>(interactions_.size() + 1); }

 private:
  struct Residual {
    Linear first, second;
  };
  struct Interaction {
    Linear rbf_down, rbf_up, sbf_down, sbf_up;  // bases -> basis_size -> features / triplet_features
    Linear kj, ji, down, up;                    // messages; down/up to the triplet width and back
    std::vector<Residual> before_skip, after_skip;
    Linear skip;
  };
  struct Output {
    Linear rbf, up;
    std::vector<Linear> hidden;
  };
  // Under graph parallelism a rank holds its own contiguous range of the edges (all of them
  // without): their messages, radial bases and centres, and the triplets whose edge kj is one of
  // them. Triplet sums reach edges ji of any rank, so they are summed over the group and each
  // rank keeps its own rows; per-atom sums of the output blocks are summed over the group too.
  struct Edges {
    GraphPartition::Range own;
    at::Tensor rbf, centre;  // of the own edges
  };
  struct Triplets {
    at::Tensor angular;  // (triplets, angular_basis): the Legendre basis of each triplet's angle
    RowPairs pairs;      // own edge kj (numbered from own.begin) -> edge ji (of all), for the triplet sum
  };
  at::Tensor output(const Output& block, const at::Tensor& message, const Edges& edges, int64_t natoms,
                    const GraphPartition& part) const;
  at::Tensor interact(const Interaction& block, const at::Tensor& message, const Edges& edges,
                      const Triplets& triplets, const GraphPartition& part) const;

  double rcut_;
  int64_t features_, out_features_, radial_basis_, angular_basis_, envelope_exponent_;
  ElementEmbedding embedding_;
  Linear embed_rbf_, embed_edge_;
  std::vector<Interaction> interactions_;
  std::vector<Output> outputs_;  // one more than interactions: after the embedding and each block
};

}  // namespace atomforge::model
