// Graph batches and the graph trunks against independent references: triplets against a brute
// force enumeration, a batch of frames of different sizes against one frame at a time, PaiNN's
// vector features against the rotation of the frame, parameter counts against their formulas.
#include <cmath>
#include <random>
#include <set>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "graph/neighbor_list.hpp"
#include "model/dimenet.hpp"
#include "model/painn.hpp"
#include "model_test_util.hpp"

namespace atomforge::testing {
namespace {

// Triplets of a tiny triclinic box, where an atom meets several images of the same neighbour:
// every pair of edges (i -> j, S1), (j -> k, S2) except k = i with S2 = -S1.
TEST(GraphBatch, TripletsMatchBruteForceWithManyImages) {
  const data::System cu = single_frame("metals/Cu_mishin1/train/Cu32", 92);
  const double rcut = 5.5;  // beyond half the box: several images of one atom are neighbours
  model::NeighborSelection selection{rcut, {}, true};
  const std::vector<int32_t> types(cu.types.begin(), cu.types.end());
  const model::ModelInput input =
      model::build_model_input(cu.coord.data(), cu.box.data(), true, types, 1, selection, at::kDouble);

  using Edge = std::tuple<int, int, int, int, int>;  // i, j, S
  const auto nl = graph::brute_force_neighbor_list(cu.coord.data(), cu.natoms(), cu.box.data(), {true, true, true}, rcut);
  std::multiset<std::pair<Edge, Edge>> expected;
  for (std::size_t a = 0; a < nl.size(); ++a) {
    for (std::size_t b = 0; b < nl.size(); ++b) {
      if (nl.center[b] != nl.neighbor[a]) continue;
      const bool reverse = nl.neighbor[b] == nl.center[a] && nl.shift[3 * b] == -nl.shift[3 * a] &&
                           nl.shift[3 * b + 1] == -nl.shift[3 * a + 1] && nl.shift[3 * b + 2] == -nl.shift[3 * a + 2];
      if (reverse) continue;
      expected.insert({{nl.center[b], nl.neighbor[b], nl.shift[3 * b], nl.shift[3 * b + 1], nl.shift[3 * b + 2]},
                       {nl.center[a], nl.neighbor[a], nl.shift[3 * a], nl.shift[3 * a + 1], nl.shift[3 * a + 2]}});
    }
  }
  // Edges of the model input are identified by (i, j, S) through their vectors: S solves
  // r = x_j - x_i + S box.
  const at::Tensor box_inverse = at::inverse(at::from_blob(const_cast<double*>(cu.box.data()), {3, 3}, at::kDouble));
  auto edge = [&](int64_t e) -> Edge {
    const int64_t i = input.edge_center[e].item<int64_t>(), j = input.edge_neighbor[e].item<int64_t>();
    at::Tensor d = input.edge_vec[e].clone();
    for (int c = 0; c < 3; ++c) d[c] -= cu.coord[3 * j + c] - cu.coord[3 * i + c];
    const at::Tensor s = at::matmul(d.view({1, 3}), box_inverse).round().to(at::kInt).view({3});
    return {static_cast<int>(i), static_cast<int>(j), s[0].item<int>(), s[1].item<int>(), s[2].item<int>()};
  };
  std::vector<Edge> edges;
  for (int64_t e = 0; e < input.edge_vec.size(0); ++e) edges.push_back(edge(e));
  const at::Tensor kj = input.triplet_kj.contiguous(), ji = input.triplet_ji.contiguous();
  std::multiset<std::pair<Edge, Edge>> actual;
  for (int64_t t = 0; t < kj.size(0); ++t) actual.insert({edges[kj.data_ptr<int64_t>()[t]], edges[ji.data_ptr<int64_t>()[t]]});
  EXPECT_GT(expected.size(), 10000u);
  EXPECT_TRUE(actual == expected) << actual.size() << " triplets, expected " << expected.size();
}

struct Trunk {
  std::string name;
  nlohmann::ordered_json descriptor;
};

class BatchOfDifferentSizes : public ::testing::TestWithParam<Trunk> {};

// Water (192 atoms, periodic), methanol and ethane (6 and 8 atoms, isolated) in one batch give
// each frame's own energy, forces and virial.
TEST_P(BatchOfDifferentSizes, EqualsOneFrameAtATime) {
  auto model = model_with({"O", "H", "C"}, GetParam().descriptor);
  const std::vector<data::System> frames = {single_frame("water/data_0", 1), single_frame("mf/gfn2/train/CH3OH", 2),
                                            single_frame("mf/gfn2/train/C2H6", 0), single_frame("water/data_0", 4)};
  model->compute_statistics(frames, {1, 1, 1, 1});
  if (GetParam().name == "se_e2_a") roughen(*model, 30.0);
  std::vector<model::ModelInput> inputs;
  for (const auto& f : frames) inputs.push_back(model->prepare(f, {0}));
  const model::ModelInput batch = model::concatenate(inputs);
  EXPECT_EQ(batch.nframes, 4);
  EXPECT_EQ(batch.nloc, 0) << "frames of different sizes";
  const auto together = model->evaluate(batch, false);
  int64_t offset = 0;
  for (std::size_t k = 0; k < frames.size(); ++k) {
    const auto alone = model->evaluate(inputs[k], false);
    const int64_t n = frames[k].natoms();
    const double e = alone.energy.item<double>();
    EXPECT_NEAR(together.energy[k].item<double>(), e, 1e-12 * std::abs(e)) << "frame " << k;
    const at::Tensor f = alone.force[0];
    EXPECT_LT((together.force.narrow(0, offset, n) - f).abs().max().item<double>(), 1e-12 * f.abs().max().item<double>());
    EXPECT_LT((together.atom_energy.narrow(0, offset, n) - alone.atom_energy[0]).abs().max().item<double>(),
              1e-12 * alone.atom_energy.abs().max().item<double>());
    const at::Tensor w = alone.virial[0];
    EXPECT_LT((together.virial[k] - w).abs().max().item<double>(), 1e-12 * w.abs().max().item<double>());
    offset += n;
  }
  // Training through a batch: the loss gradient of the sum is the sum of the frames' gradients.
  auto params = std::vector<at::Tensor>{};
  for (const auto& [name, t] : model->parameters().parameters()) params.push_back(*t);
  auto grad_norm = [&](const at::Tensor& loss) {
    auto g = torch::autograd::grad({loss}, params, {}, false, false, true);
    double sum = 0;
    for (auto& t : g) sum += t.defined() ? t.pow(2).sum().item<double>() : 0.0;
    return std::sqrt(sum);
  };
  const auto trained = model->evaluate(batch, true);
  at::Tensor separate;
  for (const auto& in : inputs) {
    const auto p = model->evaluate(in, true);
    const at::Tensor l = p.force.pow(2).sum();
    separate = separate.defined() ? separate + l : l;
  }
  const double g_batch = grad_norm(trained.force.pow(2).sum()), g_separate = grad_norm(separate);
  EXPECT_GT(g_batch, 0.0);
  EXPECT_NEAR(g_batch, g_separate, 1e-10 * g_separate);
}

INSTANTIATE_TEST_SUITE_P(Trunks, BatchOfDifferentSizes,
                         ::testing::Values(Trunk{"se_e2_a", {{"type", "se_e2_a"},
                                                             {"sel", {30, 60, 10}},
                                                             {"rcut", 4.0},
                                                             {"rcut_smth", 2.0},
                                                             {"neuron", {4, 8}},
                                                             {"axis_neuron", 4}}},
                                           Trunk{"painn", small_painn(3.5)}, Trunk{"dimenet", small_dimenet(3.0)}),
                         [](const auto& info) { return info.param.name; });

// A message-passing model on a domain with ghost atoms (LAMMPS' view: no periodicity, images as
// ghosts) gives the periodic energy, and forces that fold onto the owners, when the ghosts reach
// the receptive field (layers x rcut), not just rcut.
TEST(GhostAtoms, MessagePassingDomainEqualsPeriodicFrame) {
  // A domain holds its atoms inside the box (the data's coordinates are not wrapped).
  data::System water = single_frame("water/data_0", 0);
  for (int64_t k = 0; k < 3 * water.natoms(); ++k) {
    const double l = water.box[4 * (k % 3)];
    water.coord[k] -= l * std::floor(water.coord[k] / l);
  }
  auto model = model_with({"O", "H"}, small_painn(3.0));
  EXPECT_DOUBLE_EQ(model->receptive_field(), 6.0);
  const auto periodic = model->evaluate(model->prepare(water, {0}), false);
  const int64_t n = water.natoms();
  auto domain = [&](double depth) {
    // Owned atoms first, then every image within `depth` of the box (orthorhombic here).
    std::vector<double> coord(water.coord.begin(), water.coord.end());
    std::vector<int32_t> types(water.types.begin(), water.types.end());
    std::vector<int64_t> owner;
    for (int64_t i = 0; i < n; ++i) owner.push_back(i);
    const double l[3] = {water.box[0], water.box[4], water.box[8]};
    for (int a = -1; a <= 1; ++a)
      for (int b = -1; b <= 1; ++b)
        for (int c = -1; c <= 1; ++c) {
          if (a == 0 && b == 0 && c == 0) continue;
          for (int64_t i = 0; i < n; ++i) {
            const double x[3] = {water.coord[3 * i] + a * l[0], water.coord[3 * i + 1] + b * l[1],
                                 water.coord[3 * i + 2] + c * l[2]};
            bool near = true;
            for (int d = 0; d < 3; ++d) near = near && x[d] > -depth && x[d] < l[d] + depth;
            if (!near) continue;
            coord.insert(coord.end(), x, x + 3);
            types.push_back(water.types[i]);
            owner.push_back(i);
          }
        }
    const auto p = model->evaluate(model->prepare_local(coord.data(), n, types), false);
    const at::Tensor folded = at::zeros({n, 3}, at::kDouble).index_add(0, at::tensor(owner, at::kLong), p.force[0]);
    return std::make_pair(p, folded);
  };
  ASSERT_GT(water.box[0], 12.0);  // images within 6.5 A of the faces are enough
  for (int k : {1, 2, 3, 5, 6, 7}) ASSERT_EQ(water.box[k], 0.0) << "the domain below assumes an orthorhombic box";
  const auto [deep, folded] = domain(6.5);
  const double e = periodic.energy.item<double>();
  EXPECT_NEAR(deep.energy.item<double>(), e, 1e-10 * std::abs(e));
  EXPECT_EQ(deep.atom_energy.size(1), n);
  EXPECT_LT((deep.atom_energy[0] - periodic.atom_energy[0]).abs().max().item<double>(), 1e-10);
  EXPECT_LT((folded - periodic.force[0]).abs().max().item<double>(), 1e-10 * periodic.force.abs().max().item<double>());
  const double w = periodic.virial.abs().max().item<double>();
  EXPECT_LT((deep.virial - periodic.virial).abs().max().item<double>(), 1e-10 * w);
  // Ghosts to one cut-off only: the second layer sees truncated ghost environments.
  const auto shallow = domain(3.2).first;
  EXPECT_GT(std::abs(shallow.energy.item<double>() - e), 1e-6);
}

// PaiNN's vector features are equivariant: rotating the frame rotates them, v' = v R (rows).
// A small PaiNN descriptor section with its defaults filled in, as the model builds it.
nlohmann::ordered_json resolved_painn_section(double rcut) {
  auto section = small_painn(rcut);
  section.erase("type");
  return config::resolve(model::painn_schema(), section);
}

TEST(PaiNN, VectorFeaturesRotateWithTheFrame) {
  const data::System frame = single_frame("water/data_0", 2);
  const auto config = resolved_painn_section(3.5);
  const model::PaiNN painn(config, {"O", "H"}, 3, at::kDouble);
  at::Tensor q = std::get<0>(at::linalg_qr(at::randn({3, 3}, at::kDouble)));
  if (at::det(q).item<double>() < 0) q.select(1, 0).neg_();
  const at::Tensor coord = at::from_blob(const_cast<double*>(frame.coord.data()), {frame.natoms(), 3}, at::kDouble);
  const at::Tensor box = at::from_blob(const_cast<double*>(frame.box.data()), {3, 3}, at::kDouble);
  const at::Tensor coord_r = at::matmul(coord, q).contiguous(), box_r = at::matmul(box, q).contiguous();
  const std::vector<int32_t> types(frame.types.begin(), frame.types.end());
  auto features = [&](const at::Tensor& x, const at::Tensor& b) {
    return painn.features(
        model::build_model_input(x.data_ptr<double>(), b.data_ptr<double>(), true, types, 1, painn.selection(), at::kDouble));
  };
  const auto plain = features(coord.contiguous(), box.contiguous()), rotated = features(coord_r, box_r);
  const double scale = plain.vector.abs().max().item<double>();
  EXPECT_GT(scale, 1e-3);
  // v is (natoms, 3, F): rotate the middle axis.
  const at::Tensor expected = at::einsum("nef,ed->ndf", {plain.vector, q});
  EXPECT_LT((rotated.vector - expected).abs().max().item<double>(), 1e-10 * scale);
  EXPECT_LT((rotated.scalar - plain.scalar).abs().max().item<double>(), 1e-10 * plain.scalar.abs().max().item<double>());
}

// The fused message sums (gather-multiply-scatter loops) against libtorch's index operators:
// features, the forces' stand-in (the gradient of an energy of s and v along the edge vectors)
// and the training gradient of a loss on those, through both passes, to the parameters.
TEST(PaiNN, FusedMessagesMatchIndexOperatorsToTheForceLossGradient) {
  const data::System frame = single_frame("water/data_0", 1);
  const auto config = resolved_painn_section(3.5);
  model::PaiNN painn(config, {"O", "H"}, 5, at::kDouble);
  model::ParameterList list;
  painn.register_into(list, "");
  std::vector<at::Tensor> params;
  for (const auto& [name, tensor] : list.parameters()) params.push_back(*tensor);
  const std::vector<int32_t> types(frame.types.begin(), frame.types.end());
  auto run = [&] {
    model::ModelInput input = model::build_model_input(frame.coord.data(), frame.box.data(), true, types, 1,
                                                        painn.selection(), at::kDouble);
    input.edge_vec = input.edge_vec.detach().requires_grad_(true);
    const auto f = painn.features(input);
    const at::Tensor weight = at::linspace(-1.0, 1.0, f.scalar.size(1), f.scalar.options());
    const at::Tensor energy = (f.scalar * weight).sum() + (f.vector * f.vector).sum();
    const at::Tensor along_edges = torch::autograd::grad({energy}, {input.edge_vec}, {}, true, true)[0];
    std::vector<at::Tensor> out = {f.scalar.detach(), f.vector.detach(), along_edges.detach()};
    for (const auto& g : torch::autograd::grad({energy + (along_edges * along_edges).sum()}, params))
      out.push_back(g);
    return out;
  };
  const auto fused = run();
  std::vector<at::Tensor> indexed;
  {
    const model::PaiNNIndexedMessagesScope reference;
    indexed = run();
  }
  ASSERT_EQ(fused.size(), indexed.size());
  for (std::size_t k = 0; k < fused.size(); ++k) {
    const double scale = std::max(1.0, indexed[k].abs().max().item<double>());
    EXPECT_LT((fused[k] - indexed[k]).abs().max().item<double>(), 1e-11 * scale) << "output " << k;
  }
  EXPECT_GT(fused.size(), 10u);
}

// Atoms farther apart than rcut: no edges, so no messages (empty pairs in every fused sum). Both
// paths agree, v stays zero, and atoms of one element get the same features.
TEST(PaiNN, AtomsWithoutNeighboursGetNoMessages) {
  const auto config = resolved_painn_section(3.5);
  const model::PaiNN painn(config, {"O", "H"}, 5, at::kDouble);
  const std::vector<double> coord = {0, 0, 0, 10, 0, 0, 0, 10, 0};
  const std::vector<double> box(9, 0.0);
  const std::vector<int32_t> types = {0, 1, 1};
  auto run = [&] {
    model::ModelInput input =
        model::build_model_input(coord.data(), box.data(), false, types, 1, painn.selection(), at::kDouble);
    EXPECT_EQ(input.edge_vec.size(0), 0);
    return painn.features(input);
  };
  const auto fused = run();
  model::PaiNNIndexedMessagesScope reference;
  const auto indexed = run();
  EXPECT_TRUE(at::allclose(fused.scalar, indexed.scalar, 0, 0));
  EXPECT_EQ(fused.vector.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(at::allclose(fused.scalar.select(0, 1), fused.scalar.select(0, 2), 0, 0));  // both H alike
  EXPECT_FALSE(at::allclose(fused.scalar.select(0, 0), fused.scalar.select(0, 1)));
}

// DimeNet's triplet sum, computed edge by edge, against its definition: the bases' outer product
// per triplet through sbf_down and sbf_up, times the gathered message, summed with libtorch's
// index operators. Values, first derivatives (to the messages, both bases and both weights) and
// second derivatives (of the first derivatives' squared norm), as in force training. Edge 7 leads
// into no triplet and edge 8 starts none.
TEST(DimeNet, TripletSumMatchesTheGateOfTheBasesOuterProduct) {
  at::Generator generator = at::detail::createCPUGenerator(31);
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const int64_t edges = 9, triplets = 40, k = 3, l = 4, b = 2, t = 5;
  const at::Tensor kj = at::randint(0, edges - 1, {triplets}, generator, at::kLong);
  const at::Tensor ji = at::cat({at::randint(0, edges - 2, {triplets - 1}, generator, at::kLong),
                                 at::full({1}, edges - 1, at::kLong)});
  const model::RowPairs pairs = model::make_row_pairs(kj, ji, edges, edges);
  const model::Linear down(l * k, b, false, at::kDouble, generator), up(b, t, false, at::kDouble, generator);
  const std::vector<at::Tensor> inputs = {at::randn({edges, t}, generator, options),
                                          at::rand({edges, k}, generator, options),
                                          at::randn({triplets, l}, generator, options)};
  auto evaluate = [&](auto sum) {
    std::vector<at::Tensor> x;
    for (const auto& v : inputs) x.push_back(v.clone().set_requires_grad(true));
    std::vector<at::Tensor> wrt = x;
    wrt.push_back(down.matrix());
    wrt.push_back(up.matrix());
    const at::Tensor y = sum(x[0], x[1], x[2]);
    const auto first = torch::autograd::grad({y.sin().sum()}, wrt, {}, true, true);
    at::Tensor norm = at::zeros({}, options);
    for (const auto& d : first) norm = norm + (d * d).sum();
    std::vector<at::Tensor> out = {y.detach()};
    for (const auto& d : first) out.push_back(d.detach());
    for (const auto& d : torch::autograd::grad({norm}, wrt)) out.push_back(d);
    return out;
  };
  const auto edge_by_edge = evaluate([&](const at::Tensor& x, const at::Tensor& rbf, const at::Tensor& angular) {
    return model::angular_triplet_sum(x, rbf, angular, down, up, pairs, model::GraphPartition());
  });
  const auto defined = evaluate([&](const at::Tensor& x, const at::Tensor& rbf, const at::Tensor& angular) {
    const at::Tensor bases = angular.repeat_interleave(k, 1) * rbf.index_select(0, kj).repeat({1, l});  // l K + k
    const at::Tensor gate = up.forward(down.forward(bases));
    return at::zeros({edges, t}, options).index_add(0, ji, x.index_select(0, kj) * gate);
  });
  ASSERT_EQ(edge_by_edge.size(), 11u);
  for (std::size_t n = 0; n < edge_by_edge.size(); ++n) {
    const double scale = std::max(1.0, defined[n].abs().max().item<double>());
    EXPECT_LT((edge_by_edge[n] - defined[n]).abs().max().item<double>(), 1e-12 * scale) << "output " << n;
  }
  EXPECT_EQ(edge_by_edge[0][edges - 2].abs().max().item<double>(), 0.0) << "edge 7 has no triplet into it";
}

// The width / depth knobs: parameter counts follow the architecture's formula, so one config
// describes models from ~1e4 to ~1e8 parameters (docs/graph-trunks.md tabulates them).
TEST(GraphTrunks, ParameterCountsFollowTheArchitecture) {
  for (const auto& [f, l, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{8, 1, 4}, {16, 3, 20}, {32, 2, 8}}) {
    auto m = model_with({"H", "O"}, {{"type", "painn"}, {"features", f}, {"layers", l}, {"radial_basis", k}});
    int64_t descriptor = 0;
    for (const auto& [name, t] : m->parameters().parameters())
      if (name.rfind("descriptor.", 0) == 0) descriptor += t->numel();
    // Embedding 119 F; per layer: phi (F F + F, F 3F + 3F), filter (K 3F, no bias), U, V (F F
    // each), update (2F F + F, F 3F + 3F).
    const int64_t per_layer =
        (f * f + f) + (3 * f * f + 3 * f) + 3 * k * f + 2 * f * f + (2 * f * f + f) + (3 * f * f + 3 * f);
    EXPECT_EQ(descriptor, 119 * f + l * per_layer) << "F " << f << " layers " << l;
  }
  // trainable: false freezes every trunk parameter and no head parameter.
  for (auto trunk : {small_painn(3.0), small_dimenet(3.0)}) {
    trunk["trainable"] = false;
    auto m = model_with({"H", "O"}, trunk);
    for (const auto& [name, t] : m->parameters().parameters())
      EXPECT_EQ(t->requires_grad(), name.rfind("descriptor.", 0) != 0) << name;
  }
}

}  // namespace
}  // namespace atomforge::testing
