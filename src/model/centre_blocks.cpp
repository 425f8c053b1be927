#include "model/centre_blocks.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace atomforge::model {

std::vector<CentreBlock> plan_centre_blocks(const ModelInput& input, int64_t max_edges) {
  const int64_t centres = input.natoms(), edges = input.edge_vec.size(0);
  if (max_edges <= 0 || edges <= max_edges) return {{0, centres, 0, edges}};
  const at::Tensor centre = input.edge_center.cpu().contiguous();  // read on the host, wherever the input is
  const int64_t* c = centre.data_ptr<int64_t>();
  // first_edge(i): the first edge whose centre is i or later.
  const auto first_edge = [&](int64_t i) { return std::lower_bound(c, c + edges, i) - c; };
  std::vector<CentreBlock> blocks;
  CentreBlock block;
  for (int64_t i = 0; i < centres; ++i) {
    const int64_t next_edge = first_edge(i + 1);
    if (i > block.begin && next_edge - block.first_edge > max_edges) {
      blocks.push_back(block);
      block = {i, i, block.end_edge, block.end_edge};
    }
    block.end = i + 1;
    block.end_edge = next_edge;
  }
  blocks.push_back(block);
  return blocks;
}

ModelInput centre_block_input(const ModelInput& input, const CentreBlock& b) {
  if (!input.slot_index.defined() || (input.triplet_kj.defined() && input.triplet_kj.numel() > 0) ||
      input.ghost_exchange || input.partition)
    fail("internal: centre blocks need a sel-based input without triplets, ghost exchange or partition");
  const int64_t centres = b.end - b.begin, edges = b.end_edge - b.first_edge;
  ModelInput out;
  out.nframes = input.nframes;
  out.atype = input.atype.narrow(0, b.begin, centres);
  out.atom_frame = input.atom_frame.narrow(0, b.begin, centres);
  out.edge_center = input.edge_center.narrow(0, b.first_edge, edges) - b.begin;
  out.edge_neighbor = input.edge_neighbor.narrow(0, b.first_edge, edges);
  out.edge_frame = input.edge_frame.narrow(0, b.first_edge, edges);
  out.edge_vec = input.edge_vec.narrow(0, b.first_edge, edges);
  // Padding (the whole input's edge count) becomes the block's edge count.
  const at::Tensor slots = input.slot_index.narrow(0, b.begin, centres);
  const int64_t padding = input.edge_vec.size(0);
  out.slot_index = at::where(slots == padding, at::full({}, edges, slots.options()), slots - b.first_edge);
  if (out.slot_index.numel() > 0 && (out.slot_index.min().item<int64_t>() < 0 || out.slot_index.max().item<int64_t>() > edges))
    fail("internal: a centre's slot names an edge of another centre (edges must be sorted by centre)");
  return out;
}

}  // namespace atomforge::model
