#pragma once
// What a model sees of a batch of frames: atom types and the edges (i, j, image) within the
// cut-off, with their vectors r_ij = x_j - x_i + S.box as a leaf tensor. Forces and virials are
// derivatives of the energy with respect to these edge vectors, so no model needs the box or
// the images again. Built once per batch from the linked-cell neighbour list.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/graph_partition.hpp"

#include "data/system.hpp"

namespace atomforge::model {

class GhostExchange;  // model/ghost_exchange.hpp

// How a descriptor wants its neighbours: all within rcut (sel empty), or per-type blocks of at
// most sel[t] nearest neighbours, padded (DeePMD-kit's se_e2_a).
struct NeighborSelection {
  double rcut = 6.0;
  std::vector<int64_t> sel;
  bool triplets = false;  // also list the pairs of edges that share an atom (angle-based models)
};

// A batch is one disjoint graph: atoms of all frames, edges between atoms of the same frame.
struct ModelInput {
  int64_t nframes = 0;
  // Nodes per frame: atoms with features, whose energies count. 0 when the frames differ in size
  // (concatenate()).
  int64_t nloc = 0;
  // Atoms per frame after the nodes that are neighbours only (LAMMPS ghosts for one-hop models).
  int64_t nghost = 0;
  // When >= 0, only the first `nowned` nodes of each frame count (LAMMPS ghosts of message-passing
  // models are nodes: their features carry the outer atoms' influence inwards).
  int64_t nowned = -1;
  int64_t nall() const { return nloc + nghost; }
  at::Tensor atype;          // (nodes) int64, model type index per node
  at::Tensor atom_frame;     // (nodes) int64, frame of each node
  at::Tensor edge_center;    // (ne) int64, node f*nall() + i; edges are sorted by centre
  at::Tensor edge_neighbor;  // (ne) int64, atom f*nall() + j, j < nall()
  at::Tensor edge_frame;     // (ne) int64
  at::Tensor edge_vec;       // (ne, 3) in the model's precision
  at::Tensor slot_index;     // (nframes*nloc, sum(sel)) int64 edge ids, `ne` for padding; sel only
  // With selection.triplets: triplet t joins edge triplet_kj[t] = (centre j, neighbour k) to edge
  // triplet_ji[t] = (centre i, neighbour j), k != i (the reverse edge of ji is left out, other
  // periodic images of i are not); the angle at j is between -r_ji and r_kj.
  at::Tensor triplet_kj;     // (nt) int64 edge ids
  at::Tensor triplet_ji;     // (nt) int64 edge ids
  int64_t truncated_centres = 0;  // centres with more neighbours of some type than sel allows
  // Graph parallelism: the ranks sharing this graph (descriptors that support it compute their
  // share of the edges or triplets); null computes everything here.
  std::shared_ptr<const GraphPartition> partition;
  // Domains with ghosts one cut-off deep whose node features are refreshed from their owners
  // between message-passing layers (ghost_exchange.hpp); null otherwise.
  std::shared_ptr<GhostExchange> ghost_exchange;

  int64_t natoms() const { return atype.size(0); }  // nodes
};

// `coord` is nframes x nloc x 3, `box` nframes x 9 (ignored when !pbc), `types` nloc model types.
ModelInput build_model_input(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                             int64_t nframes, const NeighborSelection& selection, at::ScalarType dtype);

// One non-periodic frame of `types.size()` atoms of which only the first `nlocal` are owned;
// the others are ghosts, e.g. the atoms of a LAMMPS domain's periodic images and of other ranks.
// Energies are those of the owned atoms; forces (and per-atom virials) are returned for all.
// With `ghosts_are_nodes` (message-passing models) every atom is a node and only the owned count
// (nowned), and ghosts are centres too; otherwise only owned atoms are centres and ghosts are
// neighbours (nghost), which suffices for one-hop models. truncated_centres counts the centres.
ModelInput build_local_model_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                   const NeighborSelection& selection, at::ScalarType dtype, bool ghosts_are_nodes);

// As build_local_model_input with ghosts as nodes, but only the owned atoms are centres (ghost rows
// of slot_index are all padding): for descriptors that refresh the ghosts' features from their
// owners (ghost_exchange.hpp), which need ghosts only one cut-off deep.
ModelInput build_exchange_model_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                      const NeighborSelection& selection, at::ScalarType dtype);

// Frames `frames` of `system`, with its types mapped to `type_map` by element name.
ModelInput build_model_input(const data::System& system, const std::vector<int64_t>& frames,
                             const std::vector<std::string>& type_map, const NeighborSelection& selection,
                             at::ScalarType dtype);

// One disjoint graph of several batches (frames of different sizes and systems): atom, edge,
// frame and triplet indices offset; energies are pooled per frame through atom_frame. All
// inputs share one dtype and, for sel-based descriptors, one sel.
ModelInput concatenate(const std::vector<ModelInput>& inputs);

// `input` with its index and vector tensors on `device` (the neighbour search runs on the host).
ModelInput to_device(const ModelInput& input, at::Device device);

// The triplets of `input`'s edges (see ModelInput::triplet_kj); build_model_input calls it when
// the selection asks for triplets.
void add_triplets(ModelInput& input);

}  // namespace atomforge::model
