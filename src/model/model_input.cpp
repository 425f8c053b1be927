#include "model/model_input.hpp"

#include <algorithm>
#include <numeric>

#include <ATen/Parallel.h>

#include "core/error.hpp"
#include "graph/neighbor_list.hpp"
#include "model/model_input_detail.hpp"

namespace atomforge::model {

namespace {

// Centres per parallel task when choosing neighbours.
constexpr int64_t kCentreGrain = 16;

struct Candidate {
  int32_t type;
  double r2;
  int64_t pair;  // index into the frame's neighbour list
};

// Accumulates the selected edges of all frames in plain vectors, turned into tensors once.
struct EdgeBuffers {
  std::vector<int64_t> center, neighbor, frame;
  std::vector<double> vec;
  std::vector<int64_t> slots;

  void add(int64_t c, int64_t n, int64_t f, const double r[3]) {
    center.push_back(c);
    neighbor.push_back(n);
    frame.push_back(f);
    vec.insert(vec.end(), r, r + 3);
  }
};

void edge_vector(const double* coord, const double* box, const graph::NeighborList& nl, std::size_t p,
                 double out[3]) {
  const int32_t i = nl.center[p], j = nl.neighbor[p];
  const int32_t* s = &nl.shift[3 * p];
  for (int d = 0; d < 3; ++d) {
    out[d] = coord[3 * j + d] - coord[3 * i + d];
    if (box) out[d] += s[0] * box[d] + s[1] * box[3 + d] + s[2] * box[6 + d];
  }
  // Coincident atoms have no direction: the descriptor (and its second derivative) is undefined.
  if (out[0] * out[0] + out[1] * out[1] + out[2] * out[2] < 1e-20)
    fail("atoms {} and {} are at the same position (or periodic image)", i, j);
}

}  // namespace

ModelInput build_model_input(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                             int64_t nframes, const NeighborSelection& selection, at::ScalarType dtype) {
  const int64_t natoms = static_cast<int64_t>(types.size());
  const auto linked_cells = [&](int64_t, const double* x, const double* b) {
    return graph::build_neighbor_list(x, natoms, b, {pbc, pbc, pbc}, selection.rcut);
  };
  return detail::build_model_input_with(coord, box, pbc, types, nframes, selection, dtype, linked_cells,
                                        {natoms, natoms});
}

namespace detail {

ModelInput build_model_input_with(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                                  int64_t nframes, const NeighborSelection& selection, at::ScalarType dtype,
                                  const NeighborSource& neighbors, AtomRoles roles) {
  const int64_t nall = static_cast<int64_t>(types.size()), nloc = roles.nodes;
  if (roles.centers < 0 || roles.centers > nloc || nloc > nall)
    fail("internal: {} centres and {} nodes out of {} atoms", roles.centers, nloc, nall);
  const bool use_sel = !selection.sel.empty();
  const int64_t ntypes_sel = static_cast<int64_t>(selection.sel.size());
  std::vector<int64_t> offsets(ntypes_sel + 1, 0);
  std::partial_sum(selection.sel.begin(), selection.sel.end(), offsets.begin() + 1);
  const int64_t nnei = offsets.back();

  ModelInput input;
  input.nframes = nframes;
  input.nloc = nloc;
  input.nghost = nall - nloc;
  EdgeBuffers edges;
  if (use_sel) edges.slots.assign(static_cast<std::size_t>(nframes * nloc * nnei), -1);

  for (int64_t f = 0; f < nframes; ++f) {
    const double* x = coord + f * nall * 3;
    const double* b = pbc ? box + f * 9 : nullptr;
    graph::NeighborList nl;
    try {
      nl = neighbors(f, x, b);
    } catch (...) {
      rethrow_with_context(fmt::format("frame {} of the batch", f));
    }
    const int64_t atom_base = f * nall;
    // The list's pairs of each centre: begin[i] .. begin[i + 1] - 1.
    std::vector<std::size_t> begin(static_cast<std::size_t>(roles.centers) + 1, nl.size());
    {
      std::size_t p = 0;
      for (int64_t i = 0; i < roles.centers; ++i) {
        begin[i] = p;
        while (p < nl.size() && nl.center[p] == i) ++p;
      }
      if (p != nl.size()) fail("internal: the neighbour list has centres beyond the first {}", roles.centers);
    }
    if (!use_sel) {
      for (int64_t i = 0; i < roles.centers; ++i)
        for (std::size_t q = begin[i]; q < begin[i + 1]; ++q) {
          double r[3];
          edge_vector(x, b, nl, q, r);
          edges.add(atom_base + i, atom_base + nl.neighbor[q], f, r);
        }
      continue;
    }
    // Centres in parallel, in two passes: each centre's chosen pairs in slot order (per type,
    // nearest first; ties broken by list order, so the choice is deterministic), then, once
    // each centre's first edge is known, its edges. The result does not depend on the threads.
    std::vector<int64_t> chosen(static_cast<std::size_t>(roles.centers * nnei), -1), count(roles.centers, 0);
    std::vector<char> truncated(static_cast<std::size_t>(roles.centers), 0);
    at::parallel_for(0, roles.centers, kCentreGrain, [&](int64_t first, int64_t last) {
      std::vector<Candidate> candidates;
      std::vector<int64_t> per_type(static_cast<std::size_t>(ntypes_sel));
      for (int64_t i = first; i < last; ++i) {
        candidates.clear();
        for (std::size_t q = begin[i]; q < begin[i + 1]; ++q) {
          double r[3];
          edge_vector(x, b, nl, q, r);
          const int32_t t = types[nl.neighbor[q]];
          if (t >= ntypes_sel) fail("atom type {} has no sel entry (sel has {} types)", t, ntypes_sel);
          candidates.push_back({t, r[0] * r[0] + r[1] * r[1] + r[2] * r[2], static_cast<int64_t>(q)});
        }
        std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& c) {
          if (a.type != c.type) return a.type < c.type;
          if (a.r2 != c.r2) return a.r2 < c.r2;
          return a.pair < c.pair;
        });
        std::fill(per_type.begin(), per_type.end(), 0);
        int64_t* row = chosen.data() + i * nnei;
        for (const auto& cand : candidates) {
          int64_t& k = per_type[cand.type];
          if (k >= selection.sel[cand.type]) {
            truncated[i] = 1;
            continue;
          }
          row[offsets[cand.type] + k++] = cand.pair;
          ++count[i];
        }
      }
    });
    std::vector<int64_t> first_edge(static_cast<std::size_t>(roles.centers) + 1, static_cast<int64_t>(edges.center.size()));
    for (int64_t i = 0; i < roles.centers; ++i) {
      first_edge[i + 1] = first_edge[i] + count[i];
      input.truncated_centres += truncated[i];
    }
    const auto total = static_cast<std::size_t>(first_edge.back());
    edges.center.resize(total);
    edges.neighbor.resize(total);
    edges.frame.resize(total, f);
    edges.vec.resize(3 * total);
    at::parallel_for(0, roles.centers, kCentreGrain, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        int64_t e = first_edge[i];
        const int64_t* row = chosen.data() + i * nnei;
        int64_t* slot_row = edges.slots.data() + (f * nloc + i) * nnei;
        for (int64_t k = 0; k < nnei; ++k) {
          if (row[k] < 0) continue;
          const auto q = static_cast<std::size_t>(row[k]);
          edge_vector(x, b, nl, q, &edges.vec[3 * e]);
          edges.center[e] = atom_base + i;
          edges.neighbor[e] = atom_base + nl.neighbor[q];
          slot_row[k] = e++;
        }
      }
    });
  }

  const int64_t ne = static_cast<int64_t>(edges.center.size());
  const auto long_options = at::TensorOptions().dtype(at::kLong);
  auto to_long = [&](const std::vector<int64_t>& v, at::IntArrayRef shape) {
    return at::from_blob(const_cast<int64_t*>(v.data()), shape, long_options).clone();
  };
  std::vector<int64_t> atype(static_cast<std::size_t>(nframes * nloc));
  for (int64_t f = 0; f < nframes; ++f)
    for (int64_t i = 0; i < nloc; ++i) atype[f * nloc + i] = types[i];
  input.atype = to_long(atype, {nframes * nloc});
  input.atom_frame = at::arange(nframes, long_options).repeat_interleave(nloc);
  input.edge_center = to_long(edges.center, {ne});
  input.edge_neighbor = to_long(edges.neighbor, {ne});
  input.edge_frame = to_long(edges.frame, {ne});
  input.edge_vec =
      at::from_blob(edges.vec.data(), {ne, 3}, at::TensorOptions().dtype(at::kDouble)).to(dtype).clone();
  if (use_sel) {
    for (auto& s : edges.slots)
      if (s < 0) s = ne;
    input.slot_index = to_long(edges.slots, {nframes * nloc, nnei});
  }
  if (selection.triplets) add_triplets(input);
  return input;
}

}  // namespace detail

ModelInput build_model_input(const data::System& system, const std::vector<int64_t>& frames,
                             const std::vector<std::string>& type_map, const NeighborSelection& selection,
                             at::ScalarType dtype) {
  const std::vector<int32_t> types = data::map_types(system, type_map);
  const int64_t nloc = system.natoms();
  std::vector<double> coord, box;
  coord.reserve(frames.size() * nloc * 3);
  box.reserve(frames.size() * 9);
  for (int64_t f : frames) {
    if (f < 0 || f >= system.nframes) fail("{}: frame {} out of range (0..{})", system.path, f, system.nframes - 1);
    coord.insert(coord.end(), system.frame_coord(f), system.frame_coord(f) + nloc * 3);
    if (system.pbc) box.insert(box.end(), system.frame_box(f), system.frame_box(f) + 9);
  }
  try {
    return build_model_input(coord.data(), box.data(), system.pbc, types, static_cast<int64_t>(frames.size()),
                             selection, dtype);
  } catch (...) {
    rethrow_with_context(system.path);
  }
}

namespace {

// One non-periodic frame whose first `nlocal` atoms are owned and the others ghosts.
ModelInput build_domain_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                              const NeighborSelection& selection, at::ScalarType dtype, bool ghosts_are_nodes,
                              bool ghosts_are_centers) {
  const int64_t nall = static_cast<int64_t>(types.size());
  if (nlocal < 0 || nlocal > nall) fail("{} local atoms out of {}", nlocal, nall);
  const int64_t centers = ghosts_are_centers ? nall : nlocal;
  const auto linked_cells = [&](int64_t, const double* x, const double*) {
    return graph::build_neighbor_list_of_centers(x, nall, centers, nullptr, {false, false, false}, selection.rcut);
  };
  ModelInput input = detail::build_model_input_with(coord, nullptr, false, types, 1, selection, dtype, linked_cells,
                                                    {ghosts_are_nodes ? nall : nlocal, centers});
  if (ghosts_are_nodes) input.nowned = nlocal;
  return input;
}

}  // namespace

ModelInput build_local_model_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                   const NeighborSelection& selection, at::ScalarType dtype, bool ghosts_are_nodes) {
  return build_domain_input(coord, nlocal, types, selection, dtype, ghosts_are_nodes, ghosts_are_nodes);
}

ModelInput build_exchange_model_input(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                      const NeighborSelection& selection, at::ScalarType dtype) {
  return build_domain_input(coord, nlocal, types, selection, dtype, /*ghosts_are_nodes=*/true,
                            /*ghosts_are_centers=*/false);
}

}  // namespace atomforge::model
