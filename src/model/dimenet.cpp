#include "model/dimenet.hpp"

#include "core/error.hpp"
#include "model/dense_mm.hpp"
#include "model/gather_scatter.hpp"
#include "model/radial_basis.hpp"
#include "model/recompute.hpp"

namespace atomforge::model {

config::Node dimenet_schema() {
  using namespace config;
  return object(
      "DimeNet++: directional message passing on edges and triplets (a graph trunk; element embedding, so any "
      "element set)",
      with_common_descriptor_keys(
          {defaulted("rcut", positive(number("cut-off radius of the edges (A)")), 5.0),
           defaulted("features", positive(integer("width of the atom embedding and the edge messages")), 128),
           defaulted("layers", positive(integer("interaction blocks")), 4),
           defaulted("triplet_features", positive(integer("width of the messages inside the triplet sum (int_emb_size)")),
                     64),
           defaulted("basis_features", positive(integer("width the bases are projected through (basis_emb_size)")), 8),
           defaulted("out_features", positive(integer("width of the output blocks: the descriptor's size")), 256),
           defaulted("radial_basis", positive(integer("Bessel functions of the edge length")), 6),
           defaulted("angular_basis", positive(integer("Legendre polynomials of the triplet angle")), 7),
           defaulted("envelope_exponent", positive(integer("p of the polynomial envelope at rcut")), 5),
           defaulted("residuals_before_skip", non_negative(integer("residual layers before the skip connection")), 1),
           defaulted("residuals_after_skip", non_negative(integer("residual layers after the skip connection")), 2),
           defaulted("output_layers", non_negative(integer("hidden layers of each output block")), 3)}));
}

std::unique_ptr<Descriptor> make_dimenet(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map,
                                         uint64_t seed, at::ScalarType dtype) {
  return std::make_unique<DimeNet>(config, type_map, seed, dtype);
}

DimeNet::DimeNet(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
                 at::ScalarType dtype)
    : rcut_(config.at("rcut").get<double>()),
      features_(config.at("features").get<int64_t>()),
      out_features_(config.at("out_features").get<int64_t>()),
      radial_basis_(config.at("radial_basis").get<int64_t>()),
      angular_basis_(config.at("angular_basis").get<int64_t>()),
      envelope_exponent_(config.at("envelope_exponent").get<int64_t>()) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const int64_t f = features_, t = config.at("triplet_features").get<int64_t>(),
                b = config.at("basis_features").get<int64_t>(), o = out_features_;
  const int64_t nrbf = radial_basis_, nsbf = radial_basis_ * angular_basis_;
  auto lin = [&](int64_t in, int64_t out, bool bias) { return Linear(in, out, bias, dtype, gen); };
  auto residuals = [&](int64_t n) {
    std::vector<Residual> r;
    for (int64_t k = 0; k < n; ++k) r.push_back({lin(f, f, true), lin(f, f, true)});
    return r;
  };
  embedding_ = ElementEmbedding(type_map, f, dtype, gen);
  embed_rbf_ = lin(nrbf, f, true);
  embed_edge_ = lin(3 * f, f, true);
  const int64_t blocks = config.at("layers").get<int64_t>();
  auto make_output = [&] {
    Output out{lin(nrbf, f, false), lin(f, o, false), {}};
    for (int64_t k = 0; k < config.at("output_layers").get<int64_t>(); ++k) out.hidden.push_back(lin(o, o, true));
    return out;
  };
  outputs_.push_back(make_output());
  for (int64_t k = 0; k < blocks; ++k) {
    interactions_.push_back({lin(nrbf, b, false), lin(b, f, false), lin(nsbf, b, false), lin(b, t, false),
                             lin(f, f, true), lin(f, f, true), lin(f, t, false), lin(t, f, false),
                             residuals(config.at("residuals_before_skip").get<int64_t>()),
                             residuals(config.at("residuals_after_skip").get<int64_t>()), lin(f, f, true)});
    outputs_.push_back(make_output());
  }
  if (!config.at("trainable").get<bool>()) freeze_parameters(*this);
}

at::Tensor DimeNet::output(const Output& block, const at::Tensor& message, const Edges& edges, int64_t natoms,
                           const GraphPartition& part) const {
  // The radial gate has no bias: an edge's contribution vanishes with its envelope at rcut.
  const at::Tensor x = block.rbf.entered(part).forward(edges.rbf) * message;
  const at::Tensor pooled = part.leave(at::zeros({natoms, features_}, x.options()).index_add(0, edges.centre, x));
  at::Tensor h = block.up.forward(pooled);
  for (const auto& layer : block.hidden) h = swish(layer.forward(h));
  return h;
}

at::Tensor angular_triplet_sum(const at::Tensor& x, const at::Tensor& rbf, const at::Tensor& angular,
                               const Linear& sbf_down, const Linear& sbf_up, const RowPairs& triplets,
                               const GraphPartition& part) {
  // The gate is linear in the outer product a(t) (x) rbf(kj): sum_l a_l(t) Q[kj][l] with
  // Q[e][l] = sbf_up(sum_k rbf_k(e) W_down[l K + k]). So each edge carries x times Q[e][l] for
  // every l, and each triplet contributes only its L weights of those rows: L x T multiply-adds
  // per triplet instead of the bases' product, both layers and the gate, and no per-triplet
  // tensor wider than L.
  const int64_t nedges = rbf.size(0), k = rbf.size(1), l = angular.size(1);
  const at::Tensor down = part.enter(sbf_down.matrix());  // (L * K, B)
  const at::Tensor radial_down = dense_mm(rbf, down.view({l, k, -1}).permute({1, 0, 2}).reshape({k, -1}));  // (E, L * B)
  const at::Tensor q = sbf_up.entered(part).forward(radial_down.view({nedges * l, -1})).view({nedges, -1});  // (E, L * T)
  return gather_contract_scatter(x.repeat({1, l}) * q, angular, triplets);
}

at::Tensor DimeNet::interact(const Interaction& block, const at::Tensor& message, const Edges& edges,
                             const Triplets& triplets, const GraphPartition& part) const {
  const auto linear = [&part](const Linear& layer, const at::Tensor& x) { return layer.entered(part).forward(x); };
  auto residual = [&](const Residual& r, const at::Tensor& h) {
    return h + swish(linear(r.second, swish(linear(r.first, h))));
  };
  const at::Tensor x_ji = swish(linear(block.ji, message));
  // Messages kj gated by their radial basis, narrowed, gated per triplet by the angular basis and
  // summed onto the edge ji they lead into: over the group, of which this rank keeps its own edges.
  at::Tensor x_kj = swish(linear(block.kj, message)) * linear(block.rbf_up, linear(block.rbf_down, edges.rbf));
  x_kj = swish(linear(block.down, x_kj));
  const at::Tensor summed = angular_triplet_sum(x_kj, edges.rbf, triplets.angular, block.sbf_down, block.sbf_up,
                                                triplets.pairs, part);
  x_kj = part.enter(part.leave(summed)).narrow(0, edges.own.begin, edges.own.count);
  x_kj = swish(linear(block.up, x_kj));

  at::Tensor h = x_ji + x_kj;
  for (const auto& r : block.before_skip) h = residual(r, h);
  h = swish(linear(block.skip, h)) + message;
  for (const auto& r : block.after_skip) h = residual(r, h);
  return h;
}

at::Tensor DimeNet::forward(const ModelInput& input) const {
  if (!input.triplet_kj.defined()) fail("dimenet: the model input has no triplets (built without them)");
  const int64_t natoms = input.natoms(), nedges = input.edge_vec.size(0);
  // With graph parallelism this rank computes its own range of the edges and the triplets whose
  // edge kj is in it (see Edges); node features and the angles' unit vectors are whole on every rank.
  static const GraphPartition whole;
  const GraphPartition& part = input.partition ? *input.partition : whole;
  Edges edges;
  edges.own = part.share(nedges);
  const at::Tensor rij = part.enter(input.edge_vec);
  const at::Tensor r = at::sqrt((rij * rij).sum(1, true));
  const at::Tensor r_own = r.narrow(0, edges.own.begin, edges.own.count);
  edges.rbf = bessel_basis(r_own, rcut_, radial_basis_) * polynomial_envelope(r_own, rcut_, envelope_exponent_);
  edges.centre = input.edge_center.narrow(0, edges.own.begin, edges.own.count);
  const at::Tensor neighbor = input.edge_neighbor.narrow(0, edges.own.begin, edges.own.count);

  at::Tensor kj = input.triplet_kj, ji = input.triplet_ji;
  if (input.partition) {
    const at::Tensor mine = ((kj >= edges.own.begin) & (kj < edges.own.begin + edges.own.count)).nonzero().view({-1});
    kj = kj.index_select(0, mine);
    ji = ji.index_select(0, mine);
  }
  Triplets triplets;
  triplets.pairs = make_row_pairs(kj - edges.own.begin, ji, edges.own.count, nedges);
  // Angle at j between j -> i (-r_ji) and j -> k (r_kj).
  const at::Tensor unit = rij / r;
  triplets.angular = legendre_basis(-gather_dot(unit.narrow(0, edges.own.begin, edges.own.count), unit, triplets.pairs),
                                    angular_basis_);  // (triplets, L)

  // Captured by value: recompute_in_backward runs these again after forward has returned.
  const auto embed = [this, edges, neighbor, atype = input.atype, natoms, part](const std::vector<at::Tensor>& in) {
    const at::Tensor atom = part.enter(embedding_.forward(atype));
    const Edges own{edges.own, in[0], edges.centre};
    at::Tensor message = swish(embed_edge_.entered(part).forward(at::cat(
        {atom.index_select(0, own.centre), atom.index_select(0, neighbor), swish(embed_rbf_.entered(part).forward(in[0]))},
        1)));
    at::Tensor pooled = output(outputs_[0], message, own, natoms, part);
    return std::vector<at::Tensor>{message, pooled};
  };
  // Large force passes keep one block's activations at a time (graph parallelism keeps all: its
  // exchanges would run again in the backward).
  const bool recompute = RecomputeScope::raised() && !input.partition;
  const std::vector<at::Tensor> embedded = recompute ? recompute_in_backward(embed, {edges.rbf}) : embed({edges.rbf});
  at::Tensor message = embedded[0], descriptor = embedded[1];
  for (std::size_t k = 0; k < interactions_.size(); ++k) {
    if (recompute) {
      const auto block = [this, k, edges, triplets, natoms](const std::vector<at::Tensor>& in) {
        const Edges own{edges.own, in[1], edges.centre};
        Triplets gated = triplets;
        gated.angular = in[2];
        at::Tensor next = interact(interactions_[k], in[0], own, gated, whole);
        at::Tensor pooled = output(outputs_[k + 1], next, own, natoms, whole);
        return std::vector<at::Tensor>{next, pooled};
      };
      const std::vector<at::Tensor> out = recompute_in_backward(block, {message, edges.rbf, triplets.angular});
      message = out[0];
      descriptor = descriptor + out[1];
      continue;
    }
    message = interact(interactions_[k], message, edges, triplets, part);
    descriptor = descriptor + output(outputs_[k + 1], message, edges, natoms, part);
  }
  return descriptor;
}

void DimeNet::register_into(ParameterList& list, const std::string& prefix) {
  embedding_.register_into(list, prefix + "embedding.");
  embed_rbf_.register_into(list, prefix + "embed_rbf.");
  embed_edge_.register_into(list, prefix + "embed_edge.");
  auto residuals = [&](std::vector<Residual>& rs, const std::string& p) {
    for (std::size_t k = 0; k < rs.size(); ++k) {
      rs[k].first.register_into(list, p + std::to_string(k) + ".first.");
      rs[k].second.register_into(list, p + std::to_string(k) + ".second.");
    }
  };
  for (std::size_t k = 0; k < interactions_.size(); ++k) {
    const std::string p = prefix + "interactions." + std::to_string(k) + ".";
    Interaction& b = interactions_[k];
    const std::vector<std::pair<const char*, Linear*>> named = {
        {"rbf_down.", &b.rbf_down}, {"rbf_up.", &b.rbf_up}, {"sbf_down.", &b.sbf_down}, {"sbf_up.", &b.sbf_up},
        {"kj.", &b.kj},             {"ji.", &b.ji},         {"down.", &b.down},         {"up.", &b.up},
        {"skip.", &b.skip}};
    for (const auto& [name, linear] : named) linear->register_into(list, p + name);
    residuals(b.before_skip, p + "before_skip.");
    residuals(b.after_skip, p + "after_skip.");
  }
  for (std::size_t k = 0; k < outputs_.size(); ++k) {
    const std::string p = prefix + "outputs." + std::to_string(k) + ".";
    outputs_[k].rbf.register_into(list, p + "rbf.");
    outputs_[k].up.register_into(list, p + "up.");
    for (std::size_t h = 0; h < outputs_[k].hidden.size(); ++h)
      outputs_[k].hidden[h].register_into(list, p + "hidden." + std::to_string(h) + ".");
  }
}

}  // namespace atomforge::model
