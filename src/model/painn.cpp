#include "model/painn.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "model/cpu_kernels.hpp"
#include "model/gather_scatter.hpp"
#include "model/ghost_exchange.hpp"
#include "model/radial_basis.hpp"

namespace atomforge::model {

namespace {

// Per-atom sums of one layer's messages: scalar (natoms, F) and vector (natoms, 3, F).
struct Messages {
  at::Tensor scalar, vector;
};

// The messages as libtorch operators: per-edge tensors gathered, multiplied and added by index.
Messages indexed_messages(const at::Tensor& phi, const at::Tensor& filter, const at::Tensor& v,
                          const at::Tensor& direction, const at::Tensor& neighbour, const at::Tensor& centre,
                          int64_t natoms) {
  const int64_t f = v.size(2);
  const auto x = (phi.index_select(0, neighbour) * filter).split(f, 1);
  const at::Tensor dv = v.index_select(0, neighbour) * x[1].unsqueeze(1) + x[2].unsqueeze(1) * direction;
  return {at::zeros({natoms, f}, phi.options()).index_add(0, centre, x[0]),
          at::zeros({natoms, 3, f}, phi.options()).index_add(0, centre, dv)};
}

// The same sums without per-edge (edges, 3, F) tensors: the v term is out[i] += a[j] * w[e] over
// the edges e = (i, j) (the gated v_j, phi_v v_j, formed per atom, its filter applied to each
// of the three components); the direction term the outer product of the gated filter and the
// edge direction, scattered. Their derivatives, to any order, stay such sums (gather_scatter.hpp).
// w: the filter's three (ne, F) blocks (scalar, v, direction).
Messages fused_messages(const at::Tensor& phi, const std::vector<at::Tensor>& w, const at::Tensor& v,
                        const at::Tensor& direction, const RowPairs& pairs) {
  const int64_t natoms = v.size(0), f = v.size(2);
  const auto gate = phi.split(f, 1);
  const at::Tensor gated_v = (v * gate[1].unsqueeze(1)).reshape({natoms, 3 * f});
  const at::Tensor direction_gate = gather_multiply(gate[2], w[2], pairs);  // (ne, F)
  const at::Tensor vector = gather_multiply_scatter(gated_v, w[1], pairs) + scatter_outer(direction_gate, direction, pairs);
  return {gather_multiply_scatter(gate[0], w[0], pairs), vector.view({natoms, 3, f})};
}

}  // namespace

config::Node painn_schema() {
  using namespace config;
  return object(
      "PaiNN: equivariant message passing with scalar and vector features per atom (a graph trunk; element "
      "embedding, so any element set)",
      with_common_descriptor_keys(
          {defaulted("rcut", positive(number("cut-off radius of the edges (A)")), 5.0),
           defaulted("features", positive(integer("scalar and vector features per atom (width)")), 64),
           defaulted("layers", positive(integer("message-passing layers")), 3),
           defaulted("radial_basis", positive(integer("Bessel functions of the edge length")), 20),
           defaulted("envelope_exponent", positive(integer("p of the polynomial envelope that takes edges smoothly to "
                                                           "zero at rcut")),
                     6),
           defaulted("normalise_messages",
                     boolean("divide each layer's sum of messages over the neighbours by sqrt of the mean number of "
                             "neighbours within rcut in the training data (computed with the data statistics and "
                             "stored in the model), so that an initialised model's features and forces are of order "
                             "one at any density; false: plain sums, as in models written before this key"),
                     true),
           defaulted("smooth_directions",
                     boolean("vector messages along r_ij / rcut instead of the unit vector r_ij / r: the same "
                             "directions weighted by r / rcut, so that the energy stays smooth where two atoms meet "
                             "(a unit vector turns over there, and an initialised model, which has no repulsion, "
                             "lets atoms meet in MD); false: unit vectors, as in models written before this key"),
                     true)}));
}

std::unique_ptr<Descriptor> make_painn(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map,
                                       uint64_t seed, at::ScalarType dtype) {
  return std::make_unique<PaiNN>(config, type_map, seed, dtype);
}

PaiNN::PaiNN(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
             at::ScalarType dtype)
    : rcut_(config.at("rcut").get<double>()),
      features_(config.at("features").get<int64_t>()),
      radial_basis_(config.at("radial_basis").get<int64_t>()),
      envelope_exponent_(config.at("envelope_exponent").get<int64_t>()),
      // Model files written before these keys existed lack them (their configs were resolved
      // without them): they keep the plain sums and unit vectors they were trained with.
      normalise_messages_(config.value("normalise_messages", false)),
      smooth_directions_(config.value("smooth_directions", false)),
      avg_neighbours_(at::ones({1}, at::TensorOptions().dtype(dtype))) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const int64_t f = features_;
  embedding_ = ElementEmbedding(type_map, f, dtype, generator);
  const int64_t nlayers = config.at("layers").get<int64_t>();
  for (int64_t l = 0; l < nlayers; ++l) {
    layers_.push_back({Linear(f, f, true, dtype, generator), Linear(f, 3 * f, true, dtype, generator),
                       Linear(radial_basis_, 3 * f, false, dtype, generator), Linear(f, f, false, dtype, generator),
                       Linear(f, f, false, dtype, generator), Linear(2 * f, f, true, dtype, generator),
                       Linear(f, 3 * f, true, dtype, generator)});
  }
  if (!config.at("trainable").get<bool>()) freeze_parameters(*this);
}

PaiNN::Features PaiNN::features(const ModelInput& input) const {
  const int64_t natoms = input.natoms(), f = features_;
  // With graph parallelism this rank passes the messages of its share of the edges; node
  // features stay whole on every rank (see graph_partition.hpp).
  static const GraphPartition whole;
  const GraphPartition& part = input.partition ? *input.partition : whole;
  const auto mine = part.share(input.edge_vec.size(0));
  const at::Tensor rij = part.enter(input.edge_vec).narrow(0, mine.begin, mine.count);
  const at::Tensor centre = input.edge_center.narrow(0, mine.begin, mine.count);
  const at::Tensor neighbour = input.edge_neighbor.narrow(0, mine.begin, mine.count);
  const at::Tensor r = at::sqrt((rij * rij).sum(1, true));  // (ne, 1); no edge has r = 0
  const at::Tensor direction = smooth_directions_ ? rij / rcut_ : rij / r;  // (ne, 3)
  // The filters are linear (no bias) in the enveloped basis, so they vanish at rcut.
  const at::Tensor radial = bessel_basis(r, rcut_, radial_basis_) * polynomial_envelope(r, rcut_, envelope_exponent_);

  // On the CPU the edge sums are gather-multiply-scatter loops (model/gather_scatter); elsewhere,
  // and under a PaiNNIndexedMessagesScope, libtorch's index_select and index_add.
  const bool fused = cpu_kernels_for(rij) && !PaiNNIndexedMessagesScope::raised();
  const RowPairs pairs = fused ? make_row_pairs(neighbour, centre, natoms, natoms) : RowPairs{};
  // (ne, 3, F), materialised: libtorch 1.13's CPU kernels are ~10x slower when a product
  // broadcasts along the innermost dimension, in the forward and every backward pass.
  const at::Tensor spread_direction =
      fused ? at::Tensor() : direction.unsqueeze(2).expand({rij.size(0), 3, features_}).contiguous();

  at::Tensor s = embedding_.forward(input.atype);
  at::Tensor v = at::zeros({natoms, 3, f}, s.options());
  // The same constant on every rank (a buffer, broadcast with the parameters), applied to the
  // whole sums after they leave the partition.
  // Not a buffer of models without message normalisation, so it may still be on the host.
  const at::Tensor message_scale = avg_neighbours_.to(rij.device()).rsqrt();
  auto summed = [&](const at::Tensor& sum) { return normalise_messages_ ? message_scale * sum : sum; };
  for (const auto& layer : layers_) {
    if (&layer != &layers_.front()) refresh_ghosts(input, {&s, &v});  // domains: ghosts from owners
    // Message from neighbour j to centre i: phi(s_j) * W(r_ij), split into a scalar update, a
    // gate on v_j and a gate on the edge direction.
    const at::Tensor phi = part.enter(layer.message_out.forward(swish(layer.message_in.forward(s))));
    const Messages sums =
        fused ? fused_messages(phi, layer.filter.entered(part).forward_parts(radial, 3), part.enter(v), direction, pairs)
              : indexed_messages(phi, layer.filter.entered(part).forward(radial), part.enter(v), spread_direction,
                                 neighbour, centre, natoms);
    s = s + summed(part.leave(sums.scalar));
    v = v + summed(part.leave(sums.vector));

    // Update: scalars and vector norms gate U v and the invariant <U v, V v>. The small constant
    // keeps |V v| differentiable where v = 0 (every atom before the first message).
    const at::Tensor uv = layer.mix_u.forward(v.reshape({-1, f})).view({natoms, 3, f});
    const at::Tensor vv = layer.mix_v.forward(v.reshape({-1, f})).view({natoms, 3, f});
    const at::Tensor norm = at::sqrt((vv * vv).sum(1) + 1e-8);
    const at::Tensor a = layer.update_out.forward(swish(layer.update_in.forward(at::cat({s, norm}, 1))));
    const auto gates = a.split(f, 1);
    v = v + gates[0].unsqueeze(1) * uv;
    s = s + gates[1] * (uv * vv).sum(1) + gates[2];
  }
  return {s, v};
}

void PaiNN::compute_statistics(const std::vector<ModelInput>& samples) {
  double edges = 0, atoms = 0;
  for (const auto& sample : samples) {
    edges += static_cast<double>(sample.edge_vec.size(0));
    atoms += static_cast<double>(sample.natoms());
  }
  // At least 1: data of mostly isolated atoms would otherwise scale the few messages up.
  avg_neighbours_.fill_(std::max(1.0, edges / std::max(1.0, atoms)));
}

void PaiNN::register_into(ParameterList& list, const std::string& prefix) {
  embedding_.register_into(list, prefix + "embedding.");
  if (normalise_messages_) list.add_buffer(prefix + "avg_neighbours", &avg_neighbours_);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = prefix + "layers." + std::to_string(l) + ".";
    Layer& layer = layers_[l];
    layer.message_in.register_into(list, p + "message_in.");
    layer.message_out.register_into(list, p + "message_out.");
    layer.filter.register_into(list, p + "filter.");
    layer.mix_u.register_into(list, p + "mix_u.");
    layer.mix_v.register_into(list, p + "mix_v.");
    layer.update_in.register_into(list, p + "update_in.");
    layer.update_out.register_into(list, p + "update_out.");
  }
}

}  // namespace atomforge::model
