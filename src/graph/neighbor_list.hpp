#pragma once
// Neighbour lists by linked cells: linear in the number of atoms, for triclinic periodic boxes of
// any shape (also smaller than twice the cut-off: then many images of one atom are neighbours),
// per-direction periodicity, and no periodicity at all.
#include <array>
#include <cstdint>
#include <vector>

namespace atomforge::graph {

struct NeighborList {
  std::vector<int32_t> center;    // i
  std::vector<int32_t> neighbor;  // j
  // 3 integers per pair: the image S with r_ij = x_j - x_i + S0*a + S1*b + S2*c, where x are the
  // coordinates as given (not wrapped) and a, b, c the box rows.
  std::vector<int32_t> shift;
  std::size_t size() const { return center.size(); }
};

// Every ordered pair (i, j, S) with 0 < |r_ij| < rcut, excluding only i == j with S == 0.
// Pairs are grouped by center in increasing i. `box` holds 9 values (rows a, b, c) and may be
// nullptr when no direction is periodic. A periodic direction needs a non-degenerate box.
// Rows of non-periodic directions are ignored (zero, in the plane of the others or anything else
// is fine): no image is taken along them, their shift component is always 0, and positions may
// lie anywhere along them (e.g. a slab with pbc T T F and atoms above or below the c row).
// Coordinates need not lie inside the box. Distinct atoms at the same position are kept (r = 0).
NeighborList build_neighbor_list(const double* coord, int64_t natoms, const double* box,
                                 std::array<bool, 3> pbc, double rcut);

// The pairs of the list above whose centre i < ncenters (all atoms are still neighbours), in the
// same order: for a domain whose first atoms are owned and the rest ghosts (only the owned ones
// need neighbours), without the work of searching around the ghosts.
NeighborList build_neighbor_list_of_centers(const double* coord, int64_t natoms, int64_t ncenters,
                                            const double* box, std::array<bool, 3> pbc, double rcut);

// O(N^2 x images) reference used by the tests.
NeighborList brute_force_neighbor_list(const double* coord, int64_t natoms, const double* box,
                                       std::array<bool, 3> pbc, double rcut);

}  // namespace atomforge::graph
