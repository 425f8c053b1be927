#pragma once
// Inference on large inputs a block of centres at a time. For descriptors whose features of a
// centre depend only on the edges in its own slot_index row (Descriptor::per_centre), the energy
// is a sum over centres, so its gradient along the edge vectors can be taken block by block: each
// block's intermediates (the embedding's (edges, width) arrays, the fitting net's activations)
// stay in cache and are freed before the next, where one pass over 10^6 edges would stream
// gigabytes through memory (and fault fresh pages in for every large temporary).
#include <cstdint>
#include <vector>

#include "model/model_input.hpp"

namespace atomforge::model {

struct CentreBlock {
  int64_t begin = 0, end = 0;            // centres (nodes)
  int64_t first_edge = 0, end_edge = 0;  // the edges they centre (edges are sorted by centre)
};

// Consecutive centres whose edges number at most `max_edges` per block (a centre with more gets
// a block of its own); one block holding everything when `max_edges` <= 0 or all edges fit.
std::vector<CentreBlock> plan_centre_blocks(const ModelInput& input, int64_t max_edges);

// The block's centres as an input of their own: edge_vec is a slice of `input`'s (the caller
// makes it a leaf), slot_index renumbered into the slice. edge_neighbor keeps the whole input's
// atom ids, which per-centre descriptors do not read. Inputs with triplets, ghost exchange or a
// graph partition are refused (their descriptors are not per-centre).
ModelInput centre_block_input(const ModelInput& input, const CentreBlock& block);

}  // namespace atomforge::model
