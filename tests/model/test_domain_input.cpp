// The inputs of a LAMMPS-like domain (owned atoms first, then ghosts) against the whole-domain
// input with every atom a centre, restricted afterwards to the edges around owned atoms: building
// only those must give the same edges, slots, triplets and truncation counts.
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <ATen/Parallel.h>

#include "model/model_input.hpp"

namespace atomforge::model {
namespace {

struct Domain {
  std::vector<double> coord;
  std::vector<int32_t> types;
  int64_t nlocal = 0;
};

// Owned atoms in a cube, ghosts in a shell `margin` deep around it, two types, liquid density.
Domain random_domain(uint64_t seed, double side, double margin) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> position(-margin, side + margin);
  Domain owned, ghosts;
  const double extent = side + 2 * margin;
  const int natoms = static_cast<int>(0.1 * extent * extent * extent);
  for (int k = 0; k < natoms; ++k) {
    const double x[3] = {position(rng), position(rng), position(rng)};
    bool inside = true;
    for (double c : x) inside = inside && c >= 0 && c < side;
    Domain& into = inside ? owned : ghosts;
    into.coord.insert(into.coord.end(), x, x + 3);
    into.types.push_back(k % 3 == 0 ? 0 : 1);
  }
  owned.nlocal = static_cast<int64_t>(owned.types.size());
  owned.coord.insert(owned.coord.end(), ghosts.coord.begin(), ghosts.coord.end());
  owned.types.insert(owned.types.end(), ghosts.types.begin(), ghosts.types.end());
  return owned;
}

// The whole-domain input cut down to the edges of the first `nlocal` centres (a prefix, as edges
// are ordered by centre), and to those nodes when ghosts are not nodes.
ModelInput owned_centres_of(ModelInput full, int64_t nlocal, bool ghosts_are_nodes) {
  const int64_t ne = (full.edge_center < nlocal).sum().item<int64_t>();
  for (at::Tensor* t : {&full.edge_center, &full.edge_neighbor, &full.edge_frame, &full.edge_vec})
    *t = t->narrow(0, 0, ne);
  if (full.slot_index.defined()) full.slot_index = full.slot_index.clamp_max(ne);
  if (full.triplet_kj.defined()) add_triplets(full);
  if (ghosts_are_nodes) {
    full.nowned = nlocal;
    return full;
  }
  full.nghost = full.nloc - nlocal;
  full.nloc = nlocal;
  full.atype = full.atype.narrow(0, 0, nlocal);
  full.atom_frame = full.atom_frame.narrow(0, 0, nlocal);
  if (full.slot_index.defined()) full.slot_index = full.slot_index.narrow(0, 0, nlocal);
  return full;
}

// Owned centres with more neighbours of some type than sel allows, counted from all their
// neighbours (the whole-domain input without sel).
int64_t truncated_owned(const Domain& d, const NeighborSelection& selection) {
  if (selection.sel.empty()) return 0;
  const NeighborSelection all{selection.rcut, {}, false};
  const ModelInput every = build_model_input(d.coord.data(), nullptr, false, d.types, 1, all, at::kDouble);
  const auto ntypes = static_cast<int64_t>(selection.sel.size());
  const at::Tensor owned = every.edge_center < d.nlocal;
  const at::Tensor key = every.edge_center.masked_select(owned) * ntypes +
                         every.atype.index_select(0, every.edge_neighbor.masked_select(owned));
  const at::Tensor count = key.bincount({}, d.nlocal * ntypes).view({d.nlocal, ntypes});
  const at::Tensor sel = at::tensor(selection.sel, at::kLong).to(count.scalar_type());
  return (count > sel).any(1).sum().item<int64_t>();
}

void expect_same(const ModelInput& got, const ModelInput& want) {
  EXPECT_EQ(got.nframes, want.nframes);
  EXPECT_EQ(got.nloc, want.nloc);
  EXPECT_EQ(got.nghost, want.nghost);
  EXPECT_EQ(got.nowned, want.nowned);
  EXPECT_TRUE(at::equal(got.atype, want.atype));
  EXPECT_TRUE(at::equal(got.atom_frame, want.atom_frame));
  EXPECT_TRUE(at::equal(got.edge_center, want.edge_center));
  EXPECT_TRUE(at::equal(got.edge_neighbor, want.edge_neighbor));
  EXPECT_TRUE(at::equal(got.edge_frame, want.edge_frame));
  EXPECT_TRUE(at::equal(got.edge_vec, want.edge_vec));  // bitwise: the same arithmetic
  ASSERT_EQ(got.slot_index.defined(), want.slot_index.defined());
  if (want.slot_index.defined()) {
    EXPECT_TRUE(at::equal(got.slot_index, want.slot_index));
  }
  ASSERT_EQ(got.triplet_kj.defined(), want.triplet_kj.defined());
  if (want.triplet_kj.defined()) {
    EXPECT_TRUE(at::equal(got.triplet_kj, want.triplet_kj));
    EXPECT_TRUE(at::equal(got.triplet_ji, want.triplet_ji));
  }
}

class DomainInput : public ::testing::TestWithParam<NeighborSelection> {};

TEST_P(DomainInput, OwnedCentresEqualTheWholeDomainRestricted) {
  const NeighborSelection selection = GetParam();
  for (uint64_t seed : {1, 2}) {
    SCOPED_TRACE(seed);
    const Domain d = random_domain(seed, 9.0, selection.rcut);
    ASSERT_GT(d.nlocal, 0);
    ASSERT_GT(d.types.size(), 2 * static_cast<std::size_t>(d.nlocal));
    const ModelInput full = build_model_input(d.coord.data(), nullptr, false, d.types, 1, selection, at::kDouble);
    const ModelInput local = build_local_model_input(d.coord.data(), d.nlocal, d.types, selection, at::kDouble, false);
    expect_same(local, owned_centres_of(full, d.nlocal, false));
    const ModelInput exchange = build_exchange_model_input(d.coord.data(), d.nlocal, d.types, selection, at::kDouble);
    expect_same(exchange, owned_centres_of(full, d.nlocal, true));
    const int64_t truncated = truncated_owned(d, selection);
    if (!selection.sel.empty()) {
      ASSERT_TRUE(truncated > 0 && truncated < d.nlocal) << truncated;
    }
    EXPECT_EQ(local.truncated_centres, truncated);
    EXPECT_EQ(exchange.truncated_centres, truncated);
    // Message passing through ghost nodes needs every atom a centre: the whole domain.
    ModelInput whole = full;
    whole.nowned = d.nlocal;
    const ModelInput nodes = build_local_model_input(d.coord.data(), d.nlocal, d.types, selection, at::kDouble, true);
    expect_same(nodes, whole);
    EXPECT_EQ(nodes.truncated_centres, full.truncated_centres);
  }
}

TEST(DomainInputEdges, NoOwnedAtomsAndNoGhosts) {
  const Domain d = random_domain(3, 6.0, 4.0);
  const NeighborSelection selection{4.0, {6, 12}, false};
  const ModelInput none = build_local_model_input(d.coord.data(), 0, d.types, selection, at::kDouble, false);
  EXPECT_EQ(none.natoms(), 0);
  EXPECT_EQ(none.edge_vec.size(0), 0);
  EXPECT_EQ(none.slot_index.size(0), 0);
  const auto n = static_cast<int64_t>(d.types.size());
  const ModelInput all = build_local_model_input(d.coord.data(), n, d.types, selection, at::kDouble, false);
  expect_same(all, build_model_input(d.coord.data(), nullptr, false, d.types, 1, selection, at::kDouble));
  EXPECT_THROW(build_local_model_input(d.coord.data(), n + 1, d.types, selection, at::kDouble, false), std::exception);
}

// Centres choose their neighbours in parallel: the input (edge order, slots, truncation count)
// must not depend on the thread count.
TEST(DomainInputEdges, SameForAnyThreadCount) {
  const Domain d = random_domain(4, 9.0, 4.0);
  const NeighborSelection selection{4.0, {6, 12}, false};
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const ModelInput one = build_model_input(d.coord.data(), nullptr, false, d.types, 1, selection, at::kDouble);
  at::set_num_threads(3);
  const ModelInput three = build_model_input(d.coord.data(), nullptr, false, d.types, 1, selection, at::kDouble);
  at::set_num_threads(threads);
  ASSERT_GT(one.truncated_centres, 0);
  EXPECT_EQ(three.truncated_centres, one.truncated_centres);
  expect_same(three, one);
}

// Sel slots about as many as the mean neighbour counts (some centres truncated), all neighbours,
// and triplets.
INSTANTIATE_TEST_SUITE_P(Selections, DomainInput,
                         ::testing::Values(NeighborSelection{4.0, {9, 18}, false}, NeighborSelection{4.0, {}, false},
                                           NeighborSelection{3.5, {}, true}),
                         [](const ::testing::TestParamInfo<NeighborSelection>& info) {
                           return std::string(info.param.triplets ? "Triplets"
                                              : info.param.sel.empty() ? "AllNeighbours"
                                                                       : "PerTypeSel");
                         });

}  // namespace
}  // namespace atomforge::model
