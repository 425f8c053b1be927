// Batches as disjoint graphs: concatenation of batches, the triplets of angle-based models, and the
// move to the model's device.
#include <cmath>

#include "core/error.hpp"
#include "model/model_input.hpp"

namespace atomforge::model {

ModelInput concatenate(const std::vector<ModelInput>& inputs) {
  if (inputs.empty()) fail("concatenate: no inputs");
  const ModelInput& first = inputs.front();
  const bool slots = first.slot_index.defined(), triplets = first.triplet_kj.defined();
  int64_t total_edges = 0;
  for (const auto& in : inputs) {
    if (in.edge_vec.scalar_type() != first.edge_vec.scalar_type()) fail("concatenate: inputs differ in precision");
    if (in.nghost > 0 || in.nowned >= 0) fail("concatenate: inputs with ghost atoms are single frames");
    if (in.slot_index.defined() != slots || in.triplet_kj.defined() != triplets ||
        (slots && in.slot_index.size(1) != first.slot_index.size(1)))
      fail("concatenate: inputs were built for different neighbour selections");
    total_edges += in.edge_vec.size(0);
  }
  ModelInput out;
  std::vector<at::Tensor> atype, atom_frame, center, neighbor, frame, vec, slot, kj, ji;
  int64_t atoms = 0, edges = 0;
  out.nloc = first.nloc;
  for (const auto& in : inputs) {
    atype.push_back(in.atype);
    atom_frame.push_back(in.atom_frame + out.nframes);
    center.push_back(in.edge_center + atoms);
    neighbor.push_back(in.edge_neighbor + atoms);
    frame.push_back(in.edge_frame + out.nframes);
    vec.push_back(in.edge_vec);
    const int64_t ne = in.edge_vec.size(0);
    // Padding slots point one past the last edge: of the input before, of the batch after.
    if (slots) slot.push_back(at::where(in.slot_index == ne, at::full({}, total_edges, at::kLong), in.slot_index + edges));
    if (triplets) {
      kj.push_back(in.triplet_kj + edges);
      ji.push_back(in.triplet_ji + edges);
    }
    if (in.nloc != first.nloc) out.nloc = 0;
    out.nframes += in.nframes;
    out.truncated_centres += in.truncated_centres;
    atoms += in.natoms();
    edges += ne;
  }
  out.atype = at::cat(atype);
  out.atom_frame = at::cat(atom_frame);
  out.edge_center = at::cat(center);
  out.edge_neighbor = at::cat(neighbor);
  out.edge_frame = at::cat(frame);
  out.edge_vec = at::cat(vec);
  if (slots) out.slot_index = at::cat(slot);
  if (triplets) {
    out.triplet_kj = at::cat(kj);
    out.triplet_ji = at::cat(ji);
  }
  return out;
}

ModelInput to_device(const ModelInput& input, at::Device device) {
  ModelInput out = input;
  for (at::Tensor* t : {&out.atype, &out.atom_frame, &out.edge_center, &out.edge_neighbor, &out.edge_frame,
                        &out.edge_vec, &out.slot_index, &out.triplet_kj, &out.triplet_ji})
    if (t->defined()) *t = t->to(device);
  return out;
}

void add_triplets(ModelInput& input) {
  const int64_t ne = input.edge_vec.size(0);
  const int64_t natoms = input.nloc > 0 ? input.nframes * input.nall() : input.natoms();  // ghosts too
  const at::Tensor center_t = input.edge_center.contiguous(), neighbor_t = input.edge_neighbor.contiguous();
  const at::Tensor vec_t = input.edge_vec.detach().to(at::kDouble).contiguous();
  const int64_t* center = center_t.data_ptr<int64_t>();
  const int64_t* neighbor = neighbor_t.data_ptr<int64_t>();
  const double* r = vec_t.data_ptr<double>();
  // Edges are sorted by centre: first[a] .. first[a+1] are the edges of atom a.
  std::vector<int64_t> first(static_cast<std::size_t>(natoms + 1), 0);
  for (int64_t e = 0; e < ne; ++e) {
    if (e > 0 && center[e] < center[e - 1]) fail("add_triplets: edges are not sorted by centre");
    ++first[center[e] + 1];
  }
  for (int64_t a = 0; a < natoms; ++a) first[a + 1] += first[a];
  std::vector<int64_t> kj, ji;
  for (int64_t e = 0; e < ne; ++e) {  // e = (i, j)
    const int64_t i = center[e], j = neighbor[e];
    for (int64_t f = first[j]; f < first[j + 1]; ++f) {  // f = (j, k)
      // The reverse edge (k = i, same image) has r_f = -r_e; other images of i differ by a cell vector.
      const bool reverse = neighbor[f] == i && std::abs(r[3 * f] + r[3 * e]) < 1e-6 &&
                           std::abs(r[3 * f + 1] + r[3 * e + 1]) < 1e-6 && std::abs(r[3 * f + 2] + r[3 * e + 2]) < 1e-6;
      if (reverse) continue;
      kj.push_back(f);
      ji.push_back(e);
    }
  }
  const auto nt = static_cast<int64_t>(kj.size());
  input.triplet_kj = at::from_blob(kj.data(), {nt}, at::kLong).clone();
  input.triplet_ji = at::from_blob(ji.data(), {nt}, at::kLong).clone();
}

}  // namespace atomforge::model
