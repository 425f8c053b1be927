#include "graph/neighbor_list.hpp"

// Box rows of non-periodic directions are ignored (they may be zero, in the plane of the others,
// or anything else): no image is ever taken along them, so they cannot change the result, and
// positions may lie anywhere along them. Internally those rows are replaced by unit vectors
// orthogonal to the periodic rows, which makes the cell grid well defined for every pbc mix.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "core/error.hpp"

namespace atomforge::graph {
namespace {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // rows

// Relative volume below which periodic rows count as linearly dependent.
constexpr double kDegenerateTolerance = 1e-8;
// More neighbour-cell offsets per atom than this means a box so much thinner than the cut-off
// that the list could not fit in memory anyway; better to say so than to run for hours.
constexpr double kMaxOffsetsPerAtom = 1e8;
// Wraps are reported in int32 shifts.
constexpr double kMaxWrap = 1e9;
constexpr double kPi = 3.14159265358979323846;

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 scaled(const Vec3& a, double f) { return {a[0] * f, a[1] * f, a[2] * f}; }
Vec3 unit(const Vec3& a) { return scaled(a, 1.0 / norm(a)); }

std::string pbc_string(std::array<bool, 3> pbc) {
  std::string s;
  for (bool p : pbc) s += p ? 'T' : 'F';
  return s;
}

int count_periodic(std::array<bool, 3> pbc) {
  return static_cast<int>(pbc[0]) + static_cast<int>(pbc[1]) + static_cast<int>(pbc[2]);
}

// Checks shared by the fast and the reference builders, so that both reject the same inputs.
void validate_atoms(const double* coord, int64_t natoms, double rcut) {
  if (!(rcut > 0.0) || !std::isfinite(rcut)) {
    fail("neighbour list: the cut-off must be a positive finite number, got {}", rcut);
  }
  if (natoms < 0) fail("neighbour list: negative number of atoms ({})", natoms);
  if (natoms > std::numeric_limits<int32_t>::max()) {
    fail("neighbour list: {} atoms do not fit 32-bit atom indices", natoms);
  }
  if (natoms > 0 && coord == nullptr) fail("neighbour list: no coordinates for {} atoms", natoms);
  for (int64_t i = 0; i < natoms; ++i) {
    const double* x = coord + 3 * i;
    if (!std::isfinite(x[0]) || !std::isfinite(x[1]) || !std::isfinite(x[2])) {
      fail("neighbour list: atom {} has non-finite coordinates ({}, {}, {})", i, x[0], x[1], x[2]);
    }
  }
}

// Returns the box rows, after checking that the periodic ones span a proper lattice.
Mat3 read_box(const double* box, std::array<bool, 3> pbc) {
  Mat3 h{};
  const int k = count_periodic(pbc);
  if (k == 0) return h;
  if (box == nullptr) fail("neighbour list: pbc {} needs a box, none was given", pbc_string(pbc));
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) h[d][c] = box[3 * d + c];
    if (pbc[d] && !(std::isfinite(h[d][0]) && std::isfinite(h[d][1]) && std::isfinite(h[d][2]))) {
      fail("neighbour list: box row {} is not finite", d);
    }
  }
  // Volume of the periodic sub-lattice (length, area or volume) against the product of its row
  // lengths: near zero means the rows are (nearly) dependent.
  double measure = 0.0, lengths = 1.0;
  std::array<int, 3> p{};
  int np = 0;
  for (int d = 0; d < 3; ++d) {
    if (pbc[d]) {
      p[np++] = d;
      lengths *= norm(h[d]);
    }
  }
  if (k == 1) measure = norm(h[p[0]]);
  if (k == 2) measure = norm(cross(h[p[0]], h[p[1]]));
  if (k == 3) measure = std::abs(dot(h[0], cross(h[1], h[2])));
  if (!(lengths > 0.0) || !(measure > kDegenerateTolerance * lengths)) {
    fail("neighbour list: the box is degenerate (rows a={},{},{} b={},{},{} c={},{},{}) for pbc {}",
         h[0][0], h[0][1], h[0][2], h[1][0], h[1][1], h[1][2], h[2][0], h[2][1], h[2][2],
         pbc_string(pbc));
  }
  // Non-periodic rows play no part (and may hold anything, even non-finite values).
  for (int d = 0; d < 3; ++d) {
    if (!pbc[d]) h[d] = {0, 0, 0};
  }
  return h;
}

// Replaces the non-periodic rows by orthonormal vectors perpendicular to the periodic ones, so the
// fractional coordinate along such a row is a plain distance (Angstrom) and the matrix inverts.
Mat3 complete_basis(const Mat3& box, std::array<bool, 3> pbc) {
  const int k = count_periodic(pbc);
  if (k == 3) return box;
  Mat3 h{};
  if (k == 0) {
    h[0] = {1, 0, 0};
    h[1] = {0, 1, 0};
    h[2] = {0, 0, 1};
    return h;
  }
  std::array<int, 3> periodic{}, open{};
  int np = 0, no = 0;
  for (int d = 0; d < 3; ++d) (pbc[d] ? periodic[np++] : open[no++]) = d;
  for (int d = 0; d < np; ++d) h[periodic[d]] = box[periodic[d]];
  if (k == 2) {
    h[open[0]] = unit(cross(box[periodic[0]], box[periodic[1]]));
    return h;
  }
  // One periodic row a: cross it with the Cartesian axis it is least aligned with.
  const Vec3& a = box[periodic[0]];
  int axis = 0;
  for (int c = 1; c < 3; ++c) {
    if (std::abs(a[c]) < std::abs(a[axis])) axis = c;
  }
  Vec3 e{0, 0, 0};
  e[axis] = 1.0;
  const Vec3 u = unit(cross(a, e));
  h[open[0]] = u;
  h[open[1]] = unit(cross(a, u));
  return h;
}

// The cell grid along one direction of the (completed) basis.
struct Axis {
  bool periodic = false;
  double width = 0;   // perpendicular distance between the planes s = 0 and s = 1 (Angstrom)
  double lo = 0;      // fractional coordinate of the first cell's lower face
  double span = 1;    // fractional extent covered by the cells
  int64_t cells = 1;
  int64_t reach = 0;  // neighbour-cell offsets searched on each side
};

// One step from a centre cell to a neighbour cell along one direction.
struct Hop {
  int32_t cell;
  int32_t image;
  Vec3 displacement;  // image times the box row
};

int64_t cells_for(double extent, double rcut) {
  // Clamped before the cast: a sparse system can span 1e300 Angstrom.
  const double n = std::floor(std::min(extent / rcut, 1e6));
  return std::max<int64_t>(1, static_cast<int64_t>(n));
}

// Cells no thinner than the cut-off; if that makes many more cells than atoms (sparse systems),
// coarser cells keep the work linear in atoms. Coarser cells never raise the reach above one.
void choose_cells(std::array<Axis, 3>& axes, int64_t natoms, double rcut) {
  for (Axis& ax : axes) ax.cells = cells_for(ax.span * ax.width, rcut);
  const int64_t limit = 2 * natoms + 8;
  while (axes[0].cells * axes[1].cells * axes[2].cells > limit) {
    Axis& largest = *std::max_element(axes.begin(), axes.end(), [](const Axis& a, const Axis& b) {
      return a.cells < b.cells;
    });
    largest.cells = std::max<int64_t>(1, largest.cells / 2);
  }
  for (Axis& ax : axes) {
    // Periodic: above one when the box is thinner than the cut-off, as several images of a cell
    // are then in range (capped only to keep the cast defined; build_grid rejects such boxes).
    const double cell_width = ax.span * ax.width / static_cast<double>(ax.cells);
    const double reach = std::min(std::ceil(rcut / cell_width), 1e9);
    ax.reach = static_cast<int64_t>(reach);
    // Open: offsets past the last cell would find nothing.
    if (!ax.periodic) ax.reach = std::min(ax.reach, ax.cells - 1);
  }
}

// The neighbour cells of every cell along one direction, flattened: hops of cell c are
// hops[start[c] .. start[c+1]). In a periodic direction, offset o from cell c lands on cell
// (c+o) mod n of image floor((c+o)/n); distinct offsets give distinct (cell, image) pairs, so no
// (atom, image) is visited twice even when 2*reach+1 exceeds the number of cells.
struct AxisHops {
  std::vector<Hop> hops;
  std::vector<int32_t> start;
};

AxisHops build_hops(const Axis& ax, const Vec3& row) {
  AxisHops out;
  out.start.reserve(static_cast<std::size_t>(ax.cells) + 1);
  out.hops.reserve(static_cast<std::size_t>(ax.cells * (2 * ax.reach + 1)));
  for (int64_t c = 0; c < ax.cells; ++c) {
    out.start.push_back(static_cast<int32_t>(out.hops.size()));
    for (int64_t o = -ax.reach; o <= ax.reach; ++o) {
      int64_t target = c + o;
      int64_t image = 0;
      if (ax.periodic) {
        image = target >= 0 ? target / ax.cells : -((-target + ax.cells - 1) / ax.cells);
        target -= image * ax.cells;
      } else if (target < 0 || target >= ax.cells) {
        continue;
      }
      out.hops.push_back({static_cast<int32_t>(target), static_cast<int32_t>(image),
                          scaled(row, static_cast<double>(image))});
    }
  }
  out.start.push_back(static_cast<int32_t>(out.hops.size()));
  return out;
}

// Atoms sorted by cell (stable, so increasing index within a cell), with wrapped positions.
struct CellGrid {
  std::array<Axis, 3> axes;
  std::vector<int32_t> cell_start;              // atoms of cell c: [cell_start[c], cell_start[c+1])
  std::array<std::vector<double>, 3> position;  // per sorted atom, wrapped into the box
  std::vector<int32_t> index;                   // original atom index per sorted atom
  std::vector<int32_t> wrap;                    // 3 per sorted atom: x_wrapped = x - wrap . box
  std::vector<int32_t> slot;                    // sorted position of each original atom
  std::vector<std::array<int32_t, 3>> cell_of;  // cell coordinates per original atom
};

CellGrid build_grid(const double* coord, int64_t natoms, const Mat3& h, std::array<bool, 3> pbc,
                    double rcut) {
  CellGrid g;
  const std::size_t n = static_cast<std::size_t>(natoms);
  // Dual vectors: s_d = x . dual[d]; 1 / |dual[d]| is the distance between lattice planes.
  const double det = dot(h[0], cross(h[1], h[2]));
  const Mat3 dual = {scaled(cross(h[1], h[2]), 1.0 / det), scaled(cross(h[2], h[0]), 1.0 / det),
                     scaled(cross(h[0], h[1]), 1.0 / det)};

  std::vector<double> frac(3 * n);
  std::vector<int32_t> wrap(3 * n, 0);
  for (int d = 0; d < 3; ++d) {
    Axis& ax = g.axes[d];
    ax.periodic = pbc[d];
    ax.width = 1.0 / norm(dual[d]);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3 x = {coord[3 * i], coord[3 * i + 1], coord[3 * i + 2]};
      double s = dot(x, dual[d]);
      if (ax.periodic) {
        const double w = std::floor(s);
        if (std::abs(w) > kMaxWrap) {
          fail("neighbour list: atom {} lies {} box lengths outside the box along direction {}", i,
               w, d);
        }
        wrap[3 * i + d] = static_cast<int32_t>(w);
        s -= w;
      }
      frac[3 * i + d] = s;
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
    if (!ax.periodic) {
      ax.lo = lo;
      ax.span = hi - lo;
    }
  }
  choose_cells(g.axes, natoms, rcut);

  double offsets = 1.0;
  for (const Axis& ax : g.axes) offsets *= static_cast<double>(2 * ax.reach + 1);
  if (offsets > kMaxOffsetsPerAtom) {
    fail("neighbour list: the box (perpendicular widths {}, {}, {}) is far too thin for the "
         "cut-off {}: each atom would see over {} cell images",
         g.axes[0].width, g.axes[1].width, g.axes[2].width, rcut, kMaxOffsetsPerAtom);
  }

  // Bin, then counting-sort by cell.
  const int64_t n1 = g.axes[1].cells, n2 = g.axes[2].cells;
  const int64_t ncells = g.axes[0].cells * n1 * n2;
  g.cell_of.resize(n);
  std::vector<int64_t> cell_id(n);
  g.cell_start.assign(static_cast<std::size_t>(ncells) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (int d = 0; d < 3; ++d) {
      const Axis& ax = g.axes[d];
      const double scale = ax.span > 0 ? static_cast<double>(ax.cells) / ax.span : 0.0;
      // Clamped: wrapping -1e-18 gives exactly 1.0, and the top face belongs to the last cell.
      const int64_t c = static_cast<int64_t>((frac[3 * i + d] - ax.lo) * scale);
      g.cell_of[i][d] = static_cast<int32_t>(std::clamp<int64_t>(c, 0, ax.cells - 1));
    }
    cell_id[i] = (g.cell_of[i][0] * n1 + g.cell_of[i][1]) * n2 + g.cell_of[i][2];
    ++g.cell_start[static_cast<std::size_t>(cell_id[i]) + 1];
  }
  for (int64_t c = 0; c < ncells; ++c) g.cell_start[c + 1] += g.cell_start[c];

  for (auto& p : g.position) p.resize(n);
  g.index.resize(n);
  g.wrap.resize(3 * n);
  g.slot.resize(n);
  std::vector<int32_t> fill(g.cell_start.begin(), g.cell_start.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const int32_t k = fill[static_cast<std::size_t>(cell_id[i])]++;
    g.index[k] = static_cast<int32_t>(i);
    g.slot[i] = k;
    for (int c = 0; c < 3; ++c) {
      double x = coord[3 * i + c];
      for (int d = 0; d < 3; ++d) x -= wrap[3 * i + d] * h[d][c];
      g.position[c][k] = x;
      g.wrap[3 * k + c] = wrap[3 * i + c];
    }
  }
  return g;
}

int32_t cell_size(const CellGrid& g, int64_t c) { return g.cell_start[c + 1] - g.cell_start[c]; }

// Candidates (atoms in cells searched from the centres) scaled by the share of the search region
// the cut-off sphere fills: close enough that the output vectors rarely grow, cheap (cells x hops).
std::size_t estimate_pairs(const CellGrid& g, const std::array<AxisHops, 3>& hops, int64_t ncenters,
                           double volume, double rcut) {
  const int64_t n1 = g.axes[1].cells, n2 = g.axes[2].cells;
  std::vector<int32_t> centers_in_cell(g.cell_start.size() - 1, 0);
  for (int64_t i = 0; i < ncenters; ++i) {
    const std::array<int32_t, 3>& c = g.cell_of[static_cast<std::size_t>(i)];
    ++centers_in_cell[static_cast<std::size_t>((c[0] * n1 + c[1]) * n2 + c[2])];
  }
  double candidates = 0.0;
  for (int64_t c0 = 0; c0 < g.axes[0].cells; ++c0) {
    for (int64_t c1 = 0; c1 < n1; ++c1) {
      for (int64_t c2 = 0; c2 < n2; ++c2) {
        const int32_t own = centers_in_cell[static_cast<std::size_t>((c0 * n1 + c1) * n2 + c2)];
        if (own == 0) continue;
        double seen = 0.0;
        for (int32_t a = hops[0].start[c0]; a < hops[0].start[c0 + 1]; ++a) {
          for (int32_t b = hops[1].start[c1]; b < hops[1].start[c1 + 1]; ++b) {
            for (int32_t e = hops[2].start[c2]; e < hops[2].start[c2 + 1]; ++e) {
              seen += cell_size(g, (hops[0].hops[a].cell * n1 + hops[1].hops[b].cell) * n2 +
                                       hops[2].hops[e].cell);
            }
          }
        }
        candidates += own * seen;
      }
    }
  }
  double search = volume;
  for (const Axis& ax : g.axes) {
    search *= std::min(1.0, static_cast<double>(2 * ax.reach + 1) / static_cast<double>(ax.cells)) *
              ax.span;
  }
  const double sphere = 4.0 / 3.0 * kPi * rcut * rcut * rcut;
  const double share = search > 0 ? std::min(1.0, 1.15 * sphere / search) : 1.0;
  return static_cast<std::size_t>(candidates * share) + 16;
}

// One image of one cell searched from a centre cell.
struct Visit {
  int32_t begin, end;  // sorted atoms of the cell
  std::array<int32_t, 3> image;
  Vec3 displacement;   // image . box
  bool home;           // image 0: the centre itself is among the candidates, as a self pair
};

// Finds the pairs of one centre at a time and writes them straight into the output, which is
// sized up front from an estimate and grows geometrically if that falls short.
class CenterSearch {
 public:
  CenterSearch(const CellGrid& g, const std::array<AxisHops, 3>& hops, double rcut,
               std::size_t estimate, NeighborList& out)
      : g_(g), hops_(hops), rc2_(rcut * rcut), out_(out) {
    int32_t largest = 0;
    for (std::size_t c = 0; c + 1 < g.cell_start.size(); ++c) {
      largest = std::max(largest, g.cell_start[c + 1] - g.cell_start[c]);
    }
    r2_.resize(static_cast<std::size_t>(largest));
    hits_.resize(static_cast<std::size_t>(largest));
    resize_output(estimate);
  }

  void append(int32_t i) {
    const std::size_t candidates = plan(g_.cell_of[static_cast<std::size_t>(i)]);
    if (out_.neighbor.size() < used_ + candidates) {
      resize_output(std::max(used_ + candidates, 2 * out_.neighbor.size()));
    }
    const int32_t si = g_.slot[static_cast<std::size_t>(i)];
    const double xi[3] = {g_.position[0][si], g_.position[1][si], g_.position[2][si]};
    const int32_t* wi = &g_.wrap[3 * static_cast<std::size_t>(si)];
    int32_t* neighbor = out_.neighbor.data() + used_;
    int32_t* shift = out_.shift.data() + 3 * used_;
    int32_t* hits = hits_.data();
    double* __restrict__ r2 = r2_.data();
    std::size_t found = 0;
    for (const Visit& v : visits_) {
      // r = x_k + image . box - x_i = x_k - p
      const double p0 = xi[0] - v.displacement[0], p1 = xi[1] - v.displacement[1],
                   p2 = xi[2] - v.displacement[2];
      // Distances first (a loop the compiler vectorises), then branch-free gathering: whether a
      // candidate is in range is unpredictable.
      const int32_t begin = v.begin, count = v.end - v.begin;
      const double* __restrict__ x = g_.position[0].data() + begin;
      const double* __restrict__ y = g_.position[1].data() + begin;
      const double* __restrict__ z = g_.position[2].data() + begin;
      for (int32_t k = 0; k < count; ++k) {
        const double d0 = x[k] - p0, d1 = y[k] - p1, d2 = z[k] - p2;
        r2[k] = d0 * d0 + d1 * d1 + d2 * d2;
      }
      int32_t nhits = 0;
      for (int32_t k = 0; k < count; ++k) {
        hits[nhits] = k;
        nhits += static_cast<int32_t>(r2[k] < rc2_);
      }
      for (int32_t t = 0; t < nhits; ++t) {
        const std::size_t k = static_cast<std::size_t>(begin + hits[t]);
        const int32_t j = g_.index[k];
        if (v.home && j == i) continue;
        const int32_t* wj = &g_.wrap[3 * k];
        neighbor[found] = j;
        for (int d = 0; d < 3; ++d) shift[3 * found + d] = v.image[d] + wi[d] - wj[d];
        ++found;
      }
    }
    std::fill_n(out_.center.data() + used_, found, i);
    used_ += found;
  }

  // Trims the output to the pairs found (no reallocation).
  void finish() { resize_output(used_); }

 private:
  void resize_output(std::size_t pairs) {
    out_.center.resize(pairs);
    out_.neighbor.resize(pairs);
    out_.shift.resize(3 * pairs);
  }

  // Lists the (cell, image) pairs searched from centre cell `c`; returns how many atoms they hold.
  std::size_t plan(const std::array<int32_t, 3>& c) {
    visits_.clear();
    std::size_t candidates = 0;
    const int64_t n1 = g_.axes[1].cells, n2 = g_.axes[2].cells;
    const AxisHops &h0 = hops_[0], &h1 = hops_[1], &h2 = hops_[2];
    for (int32_t a = h0.start[c[0]]; a < h0.start[c[0] + 1]; ++a) {
      for (int32_t b = h1.start[c[1]]; b < h1.start[c[1] + 1]; ++b) {
        for (int32_t e = h2.start[c[2]]; e < h2.start[c[2] + 1]; ++e) {
          const Hop &ha = h0.hops[a], &hb = h1.hops[b], &he = h2.hops[e];
          const int64_t cell = (ha.cell * n1 + hb.cell) * n2 + he.cell;
          const int32_t begin = g_.cell_start[cell], end = g_.cell_start[cell + 1];
          if (begin == end) continue;
          Visit v;
          v.begin = begin;
          v.end = end;
          v.image = {ha.image, hb.image, he.image};
          for (int k = 0; k < 3; ++k) {
            v.displacement[k] = ha.displacement[k] + hb.displacement[k] + he.displacement[k];
          }
          v.home = ha.image == 0 && hb.image == 0 && he.image == 0;
          visits_.push_back(v);
          candidates += static_cast<std::size_t>(end - begin);
        }
      }
    }
    return candidates;
  }

  const CellGrid& g_;
  const std::array<AxisHops, 3>& hops_;
  const double rc2_;
  NeighborList& out_;
  std::size_t used_ = 0;  // pairs written to out_
  std::vector<Visit> visits_;
  std::vector<int32_t> hits_;  // hits_ and r2_: one cell's candidates
  std::vector<double> r2_;
};

}  // namespace

NeighborList build_neighbor_list(const double* coord, int64_t natoms, const double* box,
                                 std::array<bool, 3> pbc, double rcut) {
  return build_neighbor_list_of_centers(coord, natoms, natoms, box, pbc, rcut);
}

NeighborList build_neighbor_list_of_centers(const double* coord, int64_t natoms, int64_t ncenters,
                                            const double* box, std::array<bool, 3> pbc, double rcut) {
  validate_atoms(coord, natoms, rcut);
  if (ncenters < 0 || ncenters > natoms) {
    fail("neighbour list: {} centres out of {} atoms", ncenters, natoms);
  }
  const Mat3 h = complete_basis(read_box(box, pbc), pbc);
  NeighborList out;
  if (ncenters == 0) return out;

  // Every atom is binned (any may be a neighbour), so the grid and with it the order of each
  // centre's pairs do not depend on ncenters.
  const CellGrid g = build_grid(coord, natoms, h, pbc, rcut);
  const std::array<AxisHops, 3> hops = {build_hops(g.axes[0], h[0]), build_hops(g.axes[1], h[1]),
                                         build_hops(g.axes[2], h[2])};
  const std::size_t estimate =
      estimate_pairs(g, hops, ncenters, std::abs(dot(h[0], cross(h[1], h[2]))), rcut);
  CenterSearch search(g, hops, rcut, estimate, out);
  for (int32_t i = 0; i < static_cast<int32_t>(ncenters); ++i) search.append(i);
  search.finish();
  return out;
}

namespace {

// Inverse of a k x k symmetric positive-definite matrix (k <= 3) by Gauss-Jordan elimination.
Mat3 invert_small(Mat3 a, int k) {
  Mat3 inv{};
  for (int r = 0; r < k; ++r) inv[r][r] = 1.0;
  for (int col = 0; col < k; ++col) {
    int pivot = col;
    for (int r = col + 1; r < k; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    }
    std::swap(a[col], a[pivot]);
    std::swap(inv[col], inv[pivot]);
    const double f = 1.0 / a[col][col];
    for (int c = 0; c < k; ++c) {
      a[col][c] *= f;
      inv[col][c] *= f;
    }
    for (int r = 0; r < k; ++r) {
      if (r == col) continue;
      const double m = a[r][col];
      for (int c = 0; c < k; ++c) {
        a[r][c] -= m * a[col][c];
        inv[r][c] -= m * inv[col][c];
      }
    }
  }
  return inv;
}

}  // namespace

// Tries every pair and, per periodic direction, every image within reach of it. The reach comes
// from the Gram matrix G of the periodic rows A: for r = d + S.A, |r| >= |t_p + S_p| * w_p with
// t = G^-1 A d (the lattice coordinates of d) and w_p = 1 / sqrt((G^-1)_pp) (lattice-plane spacing).
NeighborList brute_force_neighbor_list(const double* coord, int64_t natoms, const double* box,
                                       std::array<bool, 3> pbc, double rcut) {
  validate_atoms(coord, natoms, rcut);
  const Mat3 h = read_box(box, pbc);
  std::array<int, 3> dirs{};
  int k = 0;
  for (int d = 0; d < 3; ++d) {
    if (pbc[d]) dirs[k++] = d;
  }
  Mat3 gram{};
  for (int p = 0; p < k; ++p) {
    for (int q = 0; q < k; ++q) gram[p][q] = dot(h[dirs[p]], h[dirs[q]]);
  }
  const Mat3 ginv = invert_small(gram, k);
  std::array<double, 3> reach{};
  for (int p = 0; p < k; ++p) reach[p] = rcut * std::sqrt(ginv[p][p]);

  NeighborList out;
  const double rc2 = rcut * rcut;
  for (int64_t i = 0; i < natoms; ++i) {
    for (int64_t j = 0; j < natoms; ++j) {
      const Vec3 d = {coord[3 * j] - coord[3 * i], coord[3 * j + 1] - coord[3 * i + 1],
                      coord[3 * j + 2] - coord[3 * i + 2]};
      std::array<int64_t, 3> lo{0, 0, 0}, hi{0, 0, 0};
      for (int p = 0; p < k; ++p) {
        double t = 0.0;
        for (int q = 0; q < k; ++q) t += ginv[p][q] * dot(h[dirs[q]], d);
        lo[dirs[p]] = static_cast<int64_t>(std::floor(-t - reach[p])) - 1;
        hi[dirs[p]] = static_cast<int64_t>(std::ceil(-t + reach[p])) + 1;
      }
      for (int64_t s0 = lo[0]; s0 <= hi[0]; ++s0) {
        for (int64_t s1 = lo[1]; s1 <= hi[1]; ++s1) {
          for (int64_t s2 = lo[2]; s2 <= hi[2]; ++s2) {
            if (i == j && s0 == 0 && s1 == 0 && s2 == 0) continue;
            double r2 = 0.0;
            for (int c = 0; c < 3; ++c) {
              const double r = d[c] + static_cast<double>(s0) * h[0][c] +
                               static_cast<double>(s1) * h[1][c] + static_cast<double>(s2) * h[2][c];
              r2 += r * r;
            }
            if (r2 >= rc2) continue;
            out.center.push_back(static_cast<int32_t>(i));
            out.neighbor.push_back(static_cast<int32_t>(j));
            out.shift.insert(out.shift.end(), {static_cast<int32_t>(s0), static_cast<int32_t>(s1),
                                               static_cast<int32_t>(s2)});
          }
        }
      }
    }
  }
  return out;
}

}  // namespace atomforge::graph
