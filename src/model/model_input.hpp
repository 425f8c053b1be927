#pragma once
// What a model sees of a batch of frames: atom types and the edges (i, j, image) within the
// cut-off, with their vectors r_ij = x_j - x_i + S.box as a leaf tensor. Forces and virials are
// derivatives of the energy with respect to these edge vectors, so no model needs the box or
// the images again. Built once per batch from the linked-cell neighbour list.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "data/system.hpp"

namespace atomforge::model {

// How a descriptor wants its neighbours: all within rcut (sel empty), or per-type blocks of at
// most sel[t] nearest neighbours, padded (DeePMD-kit's se_e2_a).
struct NeighborSelection {
  double rcut = 6.0;
  std::vector<int64_t> sel;
};

struct ModelInput {
  int64_t nframes = 0;
  int64_t nloc = 0;    // centres per frame: the atoms whose energies are summed
  int64_t nghost = 0;  // atoms per frame after the centres that are only neighbours (LAMMPS ghosts)
  int64_t nall() const { return nloc + nghost; }
  at::Tensor atype;          // (nframes*nloc) int64, model type index per centre
  at::Tensor edge_center;    // (ne) int64, atom index f*nall() + i with i < nloc
  at::Tensor edge_neighbor;  // (ne) int64, atom index f*nall() + j with j < nall()
  at::Tensor edge_frame;     // (ne) int64
  at::Tensor edge_vec;       // (ne, 3) in the model's precision
  at::Tensor slot_index;     // (nframes*nloc, sum(sel)) int64 edge ids, `ne` for padding; sel only
  int64_t truncated_centres = 0;  // centres with more neighbours of some type than sel allows
};

// `coord` is nframes x nloc x 3, `box` nframes x 9 (ignored when !pbc), `types` nloc model types.
ModelInput build_model_input(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                             int64_t nframes, const NeighborSelection& selection, at::ScalarType dtype);

// One non-periodic frame of `types.size()` atoms of which only the first `nlocal` are centres;
// the others (nghost of the result) are neighbours only, e.g. the ghost atoms of a LAMMPS domain
// carrying its periodic images and the atoms of other ranks. Energies are those of the first
// `nlocal` atoms; forces (and per-atom virials) are returned for all. truncated_centres counts
// the ghosts too (an upper bound for the centres).
ModelInput build_local_model_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                   const NeighborSelection& selection, at::ScalarType dtype);

// Frames `frames` of `system`, with its types mapped to `type_map` by element name.
ModelInput build_model_input(const data::System& system, const std::vector<int64_t>& frames,
                             const std::vector<std::string>& type_map, const NeighborSelection& selection,
                             at::ScalarType dtype);

}  // namespace atomforge::model
