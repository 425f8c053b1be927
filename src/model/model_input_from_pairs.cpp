#include "model/model_input_from_pairs.hpp"

#include "model/model_input_detail.hpp"

namespace atomforge::model {

ModelInput build_model_input_from_pairs(const double* coord, const double* box, bool pbc,
                                        const std::vector<int32_t>& types, const graph::NeighborList& candidates,
                                        const NeighborSelection& selection, at::ScalarType dtype) {
  const double rc2 = selection.rcut * selection.rcut;
  const auto within_cutoff = [&](int64_t, const double* x, const double* b) {
    graph::NeighborList kept;
    for (std::size_t p = 0; p < candidates.size(); ++p) {
      const int32_t i = candidates.center[p], j = candidates.neighbor[p];
      const int32_t* s = &candidates.shift[3 * p];
      double r2 = 0;
      for (int d = 0; d < 3; ++d) {
        double r = x[3 * j + d] - x[3 * i + d];
        if (b) r += s[0] * b[d] + s[1] * b[3 + d] + s[2] * b[6 + d];
        r2 += r * r;
      }
      if (r2 >= rc2) continue;
      kept.center.push_back(i);
      kept.neighbor.push_back(j);
      kept.shift.insert(kept.shift.end(), s, s + 3);
    }
    return kept;
  };
  const int64_t natoms = static_cast<int64_t>(types.size());
  return detail::build_model_input_with(coord, box, pbc, types, 1, selection, dtype, within_cutoff, {natoms, natoms});
}

}  // namespace atomforge::model
