#pragma once
// Internal to the model layer: build_model_input with the neighbour list of each frame supplied
// by the caller, so that the per-type selection and padding exist once whatever finds the pairs
// (linked cells, or a cached list with a skin in molecular dynamics).
#include <functional>

#include "graph/neighbor_list.hpp"
#include "model/model_input.hpp"

namespace atomforge::model::detail {

// What the atoms of each frame (types.size() of them) are: the first `nodes` carry features and
// energies, the rest are neighbours only (nghost); the first `centers` (<= nodes) have edges.
struct AtomRoles {
  int64_t nodes;
  int64_t centers;
};

// Pairs (i, j, S) of frame `frame` with 0 < |r_ij| < selection.rcut and i < roles.centers, grouped
// by centre in increasing i; `coord` and `box` are that frame's (box nullptr when not periodic).
using NeighborSource = std::function<graph::NeighborList(int64_t frame, const double* coord, const double* box)>;

ModelInput build_model_input_with(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                                  int64_t nframes, const NeighborSelection& selection, at::ScalarType dtype,
                                  const NeighborSource& neighbors, AtomRoles roles);

}  // namespace atomforge::model::detail
