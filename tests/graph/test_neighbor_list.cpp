#include "graph/neighbor_list.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace atomforge::graph {
namespace {

const double kPi = std::acos(-1.0);

using Pair = std::array<int32_t, 5>;  // i, j, S0, S1, S2
using Box = std::array<double, 9>;

struct System {
  std::vector<double> coord;
  Box box{};
  std::array<bool, 3> pbc{true, true, true};
  double rcut = 5.0;
  bool has_box = true;

  int64_t natoms() const { return static_cast<int64_t>(coord.size() / 3); }
  const double* box_ptr() const { return has_box ? box.data() : nullptr; }
};

NeighborList fast(const System& s) {
  return build_neighbor_list(s.coord.data(), s.natoms(), s.box_ptr(), s.pbc, s.rcut);
}
NeighborList reference(const System& s) {
  return brute_force_neighbor_list(s.coord.data(), s.natoms(), s.box_ptr(), s.pbc, s.rcut);
}

std::vector<Pair> sorted_pairs(const NeighborList& nl) {
  std::vector<Pair> out(nl.size());
  for (std::size_t p = 0; p < nl.size(); ++p) {
    out[p] = {nl.center[p], nl.neighbor[p], nl.shift[3 * p], nl.shift[3 * p + 1],
              nl.shift[3 * p + 2]};
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string describe(const std::vector<Pair>& pairs) {
  std::ostringstream os;
  for (std::size_t k = 0; k < std::min<std::size_t>(pairs.size(), 10); ++k) {
    const Pair& p = pairs[k];
    os << " (" << p[0] << "," << p[1] << "," << p[2] << "," << p[3] << "," << p[4] << ")";
  }
  if (pairs.size() > 10) os << " ... (" << pairs.size() << " in all)";
  return os.str();
}

// r_ij from the original coordinates and the reported shift, as the header defines it.
double pair_distance(const System& s, int32_t i, int32_t j, const int32_t* shift) {
  double r2 = 0.0;
  for (int c = 0; c < 3; ++c) {
    double r = s.coord[3 * j + c] - s.coord[3 * i + c];
    for (int d = 0; d < 3; ++d) {
      if (shift[d] != 0) r += shift[d] * s.box[3 * d + c];
    }
    r2 += r * r;
  }
  return std::sqrt(r2);
}

// Structure every list must have, whatever the system.
void check_structure(const System& s, const NeighborList& nl) {
  ASSERT_EQ(nl.neighbor.size(), nl.center.size());
  ASSERT_EQ(nl.shift.size(), 3 * nl.center.size());
  EXPECT_TRUE(std::is_sorted(nl.center.begin(), nl.center.end())) << "not grouped by centre";
  for (std::size_t p = 0; p < nl.size(); ++p) {
    const int32_t i = nl.center[p], j = nl.neighbor[p];
    ASSERT_TRUE(i >= 0 && i < s.natoms() && j >= 0 && j < s.natoms());
    const int32_t* sh = &nl.shift[3 * p];
    for (int d = 0; d < 3; ++d) {
      if (!s.pbc[d]) {
        ASSERT_EQ(sh[d], 0) << "image along non-periodic direction " << d;
      }
    }
    ASSERT_FALSE(i == j && sh[0] == 0 && sh[1] == 0 && sh[2] == 0) << "self pair " << i;
    ASSERT_LT(pair_distance(s, i, j, sh), s.rcut) << "pair " << i << " " << j;
  }
  const std::vector<Pair> pairs = sorted_pairs(nl);
  EXPECT_EQ(std::adjacent_find(pairs.begin(), pairs.end()), pairs.end()) << "duplicate pair";
  // (i, j, S) is present iff (j, i, -S) is.
  std::vector<Pair> mirrored(pairs.size());
  std::transform(pairs.begin(), pairs.end(), mirrored.begin(), [](const Pair& p) {
    return Pair{p[1], p[0], -p[2], -p[3], -p[4]};
  });
  std::sort(mirrored.begin(), mirrored.end());
  EXPECT_TRUE(mirrored == pairs) << "list is not symmetric";
}

// The fast list must hold exactly the reference's pairs, with the same distances.
NeighborList expect_matches_reference(const System& s) {
  const NeighborList got = fast(s);
  check_structure(s, got);
  const NeighborList want = reference(s);
  const std::vector<Pair> a = sorted_pairs(got), b = sorted_pairs(want);
  std::vector<Pair> missing, extra;
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(missing));
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << "missing:" << describe(missing);
  EXPECT_TRUE(extra.empty()) << "extra:" << describe(extra);
  EXPECT_EQ(got.size(), want.size());

  std::vector<double> ra, rb;
  for (const Pair& p : a) ra.push_back(pair_distance(s, p[0], p[1], &p[2]));
  for (const Pair& p : b) rb.push_back(pair_distance(s, p[0], p[1], &p[2]));
  std::sort(ra.begin(), ra.end());
  std::sort(rb.begin(), rb.end());
  EXPECT_EQ(ra, rb);
  return got;
}

double seconds_to_build(const System& s) {
  const auto start = std::chrono::steady_clock::now();
  fast(s);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  double normal(double sigma) { return std::normal_distribution<double>(0.0, sigma)(engine_); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(engine_); }

 private:
  std::mt19937_64 engine_;
};

// Atoms uniformly inside the box: x = s . box with s in [0, 1)^3.
std::vector<double> fill_box(Random& rng, const Box& box, int natoms) {
  std::vector<double> coord(3 * static_cast<std::size_t>(natoms));
  for (int i = 0; i < natoms; ++i) {
    const double s[3] = {rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)};
    for (int c = 0; c < 3; ++c) {
      coord[3 * i + c] = s[0] * box[c] + s[1] * box[3 + c] + s[2] * box[6 + c];
    }
  }
  return coord;
}

Box orthorhombic(double a, double b, double c) { return {a, 0, 0, 0, b, 0, 0, 0, c}; }

// Lower-triangular (LAMMPS-like) cell with tilts of up to half the lengths.
Box tilted(Random& rng, double lo, double hi) {
  const double a = rng.uniform(lo, hi), b = rng.uniform(lo, hi), c = rng.uniform(lo, hi);
  return {a, 0, 0, rng.uniform(-a / 2, a / 2), b, 0, rng.uniform(-a / 2, a / 2),
          rng.uniform(-b / 2, b / 2), c};
}

// Arbitrary rows (no zero entries), kept away from degeneracy by a dominant diagonal.
Box general(Random& rng, double length) {
  Box box;
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) {
      box[3 * d + c] = rng.uniform(-0.4, 0.4) * length + (c == d ? length : 0.0);
    }
  }
  return box;
}

TEST(NeighborList, RandomOrthorhombicBoxes) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.box = orthorhombic(rng.uniform(5, 16), rng.uniform(5, 16), rng.uniform(5, 16));
    s.coord = fill_box(rng, s.box, rng.integer(10, 120));
    s.rcut = rng.uniform(2.5, 7.0);
    expect_matches_reference(s);
  }
}

TEST(NeighborList, RandomTriclinicBoxes) {
  for (uint64_t seed = 11; seed <= 18; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.box = seed % 2 ? tilted(rng, 6, 16) : general(rng, rng.uniform(7, 14));
    s.coord = fill_box(rng, s.box, rng.integer(10, 120));
    s.rcut = rng.uniform(2.5, 7.0);
    expect_matches_reference(s);
  }
}

TEST(NeighborList, BoxAnExactMultipleOfTheCutoff) {
  // 12 / 6 and 18 / 6: two and three cells exactly one cut-off wide.
  for (double length : {12.0, 18.0}) {
    Random rng(static_cast<uint64_t>(length));
    System s;
    s.box = orthorhombic(length, length, length);
    s.coord = fill_box(rng, s.box, 150);
    s.rcut = 6.0;
    expect_matches_reference(s);
  }
}

TEST(NeighborList, SingleAtomInABoxSmallerThanTheCutoff) {
  System s;
  s.box = orthorhombic(2, 2, 2);
  s.coord = {0.3, 1.1, 1.9};
  s.rcut = 5.0;
  const NeighborList nl = expect_matches_reference(s);
  // Images n != 0 with 2|n| < 5, i.e. |n|^2 <= 6: 6 + 12 + 8 + 6 + 24 + 24.
  EXPECT_EQ(nl.size(), 80u);
  for (std::size_t p = 0; p < nl.size(); ++p) {
    EXPECT_EQ(nl.center[p], 0);
    EXPECT_EQ(nl.neighbor[p], 0);
  }
}

TEST(NeighborList, FewAtomsInATinyTriclinicBox) {
  for (uint64_t seed = 21; seed <= 24; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.box = general(rng, rng.uniform(1.5, 3.0));
    s.coord = fill_box(rng, s.box, rng.integer(1, 4));
    s.rcut = rng.uniform(4.0, 7.0);
    expect_matches_reference(s);
  }
}

TEST(NeighborList, ThinSlabLikeTriclinicCell) {
  // c is much shorter than the cut-off and tilted: many images along c only.
  Random rng(31);
  System s;
  s.box = {8.0, 0.0, 0.0, 3.0, 7.5, 0.0, 1.3, 0.9, 1.5};
  s.coord = fill_box(rng, s.box, 12);
  s.rcut = 5.0;
  expect_matches_reference(s);
}

TEST(NeighborList, AtomsFarOutsideTheBox) {
  for (uint64_t seed = 41; seed <= 45; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.box = seed % 2 ? tilted(rng, 5, 12) : general(rng, 8.0);
    s.coord = fill_box(rng, s.box, 60);
    s.rcut = 5.5;
    const NeighborList inside = fast(s);
    // Move every atom by a random lattice vector, up to 50 box lengths, either sign.
    std::vector<std::array<int, 3>> moved(60);
    for (int i = 0; i < 60; ++i) {
      for (int d = 0; d < 3; ++d) {
        moved[i][d] = rng.integer(-50, 50);
        for (int c = 0; c < 3; ++c) s.coord[3 * i + c] += moved[i][d] * s.box[3 * d + c];
      }
    }
    const NeighborList outside = expect_matches_reference(s);
    // Same pairs, with the shifts compensating the moves: S' = S + m_i - m_j.
    std::vector<Pair> expected = sorted_pairs(inside);
    for (Pair& p : expected) {
      for (int d = 0; d < 3; ++d) p[2 + d] += moved[p[0]][d] - moved[p[1]][d];
    }
    std::sort(expected.begin(), expected.end());
    EXPECT_TRUE(sorted_pairs(outside) == expected);
  }
}

TEST(NeighborList, NegativeCoordinatesInSmallBox) {
  Random rng(47);
  System s;
  s.box = orthorhombic(3.0, 4.0, 3.5);
  s.coord = {-0.5, -7.9, -12.0, -3.0, 0.0, 1.75, 100.2, -55.5, -0.0};
  s.rcut = 4.5;
  expect_matches_reference(s);
}

TEST(NeighborList, NonPeriodicMolecules) {
  for (uint64_t seed = 51; seed <= 58; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.pbc = {false, false, false};
    s.has_box = seed % 2 == 0;  // nullptr or zeros: both mean "no box"
    const int natoms = rng.integer(2, 150);
    const double spread = rng.uniform(1.0, 12.0);
    for (int i = 0; i < 3 * natoms; ++i) s.coord.push_back(rng.normal(spread) - 40.0);
    s.rcut = rng.uniform(2.0, 6.0);
    expect_matches_reference(s);
  }
}

TEST(NeighborList, PlanarAndLinearMolecules) {
  System s;
  s.pbc = {false, false, false};
  s.has_box = false;
  s.rcut = 3.0;
  // A benzene-like ring in the plane z = 0 and a chain along y: zero extent in some directions.
  for (int k = 0; k < 6; ++k) {
    s.coord.insert(s.coord.end(), {1.4 * std::cos(k * kPi / 3), 1.4 * std::sin(k * kPi / 3), 0});
  }
  expect_matches_reference(s);
  s.coord.clear();
  for (int k = 0; k < 40; ++k) s.coord.insert(s.coord.end(), {2.0, 1.2 * k, -1.0});
  expect_matches_reference(s);
}

TEST(NeighborList, NonPeriodicBoxValuesAreIgnored) {
  Random rng(59);
  System s;
  s.pbc = {false, false, false};
  s.box = {NAN, 0, 0, 0, 0, 0, 1, 2, 3};
  for (int i = 0; i < 3 * 50; ++i) s.coord.push_back(rng.uniform(-6, 6));
  const NeighborList with_box = expect_matches_reference(s);
  s.has_box = false;
  EXPECT_TRUE(sorted_pairs(fast(s)) == sorted_pairs(with_box));
}

TEST(NeighborList, SparseNonPeriodicSystemsStayCheap) {
  // Clusters a million Angstrom apart: cells over the bounding box must not number 1e18.
  Random rng(61);
  System s;
  s.pbc = {false, false, false};
  s.has_box = false;
  s.rcut = 4.0;
  for (int i = 0; i < 300; ++i) {
    const double offset = (i % 3) * 1e6;
    s.coord.insert(s.coord.end(), {offset + rng.normal(3), rng.normal(3), -offset + rng.normal(3)});
  }
  s.coord.insert(s.coord.end(), {1e12, -1e12, 5e11});
  expect_matches_reference(s);
  // Milliseconds when the cell count follows the atom count; a grid over the bounding box alone
  // would take tens of seconds and gigabytes.
  EXPECT_LT(seconds_to_build(s), 2.0);
}

TEST(NeighborList, LargeNonPeriodicCluster) {
  // 12000 atoms at liquid density: linear time for the fast list, one O(N^2) reference.
  Random rng(63);
  System s;
  s.pbc = {false, false, false};
  s.has_box = false;
  s.rcut = 5.0;
  const double radius = std::cbrt(12000 / 0.1 * 3 / (4 * kPi));
  while (s.natoms() < 12000) {
    const double x = rng.uniform(-radius, radius), y = rng.uniform(-radius, radius),
                 z = rng.uniform(-radius, radius);
    if (x * x + y * y + z * z < radius * radius) s.coord.insert(s.coord.end(), {x, y, z});
  }
  const NeighborList nl = expect_matches_reference(s);
  EXPECT_GT(nl.size(), 12000u * 20);
  EXPECT_LT(seconds_to_build(s), 2.0);  // ~10 ms; the reference takes seconds
}

// Every mix of periodic and open directions, with varied rows along the open ones.
TEST(NeighborList, MixedPeriodicity) {
  uint64_t seed = 70;
  for (int mask = 1; mask < 7; ++mask) {
    for (int variant = 0; variant < 3; ++variant) {
      SCOPED_TRACE(::testing::Message() << "mask " << mask << " variant " << variant);
      Random rng(++seed);
      System s;
      s.pbc = {(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0};
      s.box = variant == 0 ? tilted(rng, 5, 9) : general(rng, 7.0);
      s.coord = fill_box(rng, s.box, 50);
      for (int d = 0; d < 3; ++d) {
        if (s.pbc[d]) continue;
        // Spread the atoms well beyond the open row, then make that row odd.
        for (int i = 0; i < 50; ++i) {
          const double t = rng.uniform(-3, 4);
          for (int c = 0; c < 3; ++c) s.coord[3 * i + c] += t * s.box[3 * d + c];
        }
        for (int c = 0; c < 3; ++c) {
          if (variant == 1) s.box[3 * d + c] = 0.0;
          if (variant == 2) s.box[3 * d + c] = rng.uniform(-20, 20);
        }
      }
      s.rcut = rng.uniform(3.0, 6.5);
      expect_matches_reference(s);
    }
  }
}

TEST(NeighborList, SlabWithVacuumRowOrNone) {
  // T T F: the list cannot depend on the c row, which may be vacuum-sized, zero or in-plane.
  Random rng(80);
  System s;
  s.pbc = {true, true, false};
  s.box = {9.0, 0.0, 0.0, 4.5, 7.8, 0.0, 0.0, 0.0, 30.0};
  s.coord = fill_box(rng, s.box, 120);
  for (int i = 0; i < 120; ++i) s.coord[3 * i + 2] = rng.uniform(-15, 50);
  s.rcut = 6.0;
  const std::vector<Pair> first = sorted_pairs(expect_matches_reference(s));
  for (const std::array<double, 3>& c : {std::array<double, 3>{0, 0, 0}, {9.0, 0.0, 0.0},
                                         {3.0, -2.0, 0.5}}) {
    std::copy(c.begin(), c.end(), s.box.begin() + 6);
    EXPECT_TRUE(sorted_pairs(fast(s)) == first);
  }
}

TEST(NeighborList, LargePeriodicSystem) {
  Random rng(90);
  System s;
  const double length = std::cbrt(3000 / 0.1);
  s.box = {length, 0, 0, 0.3 * length, length, 0, -0.2 * length, 0.1 * length, length};
  s.coord = fill_box(rng, s.box, 3000);
  s.rcut = 6.0;
  const NeighborList got = fast(s);
  check_structure(s, got);
  const NeighborList want = reference(s);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(sorted_pairs(got) == sorted_pairs(want));
}

// A realistic frame: displaced fcc aluminium in a sheared cell, cut-off 6 A as in water models.
// The cell rows are lattice vectors (n,0,0)a, (1,n,0)a, (-1,1,n)a, so the crystal stays fcc; the
// sites are placed on the cube [0, na)^3, i.e. partly outside the sheared cell.
TEST(NeighborList, DisplacedFccInShearedCell) {
  Random rng(100);
  const double a = 4.05;
  const int n = 4;
  System s;
  s.box = {n * a, 0, 0, a, n * a, 0, -a, a, n * a};
  const double basis[4][3] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  for (int x = 0; x < n; ++x) {
    for (int y = 0; y < n; ++y) {
      for (int z = 0; z < n; ++z) {
        for (const auto& b : basis) {
          s.coord.insert(s.coord.end(), {(x + b[0]) * a + rng.normal(0.05),
                                         (y + b[1]) * a + rng.normal(0.05),
                                         (z + b[2]) * a + rng.normal(0.05)});
        }
      }
    }
  }
  s.rcut = 6.0;
  const NeighborList nl = expect_matches_reference(s);
  // Shells at a/sqrt2, a, a*sqrt(3/2), a*sqrt2 (5.73 A): 12 + 6 + 24 + 12 = 54 neighbours; the
  // next one, a*sqrt(5/2) = 6.40 A, is out. Small displacements move few pairs across 6 A.
  EXPECT_NEAR(static_cast<double>(nl.size()) / static_cast<double>(s.natoms()), 54.0, 1.0);
}

TEST(NeighborList, WaterLikeFrame) {
  // 64 molecules at 1 g/cm^3 with an O-H bond of 0.96 A, in a cubic box smaller than 2 x rcut.
  Random rng(101);
  System s;
  const double length = 12.42;
  s.box = orthorhombic(length, length, length);
  const std::vector<double> oxygens = fill_box(rng, s.box, 64);
  for (int m = 0; m < 64; ++m) {
    const double* o = &oxygens[3 * m];
    s.coord.insert(s.coord.end(), {o[0], o[1], o[2]});
    for (int h = 0; h < 2; ++h) {
      double v[3] = {rng.normal(1), rng.normal(1), rng.normal(1)};
      const double len = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
      for (int c = 0; c < 3; ++c) s.coord.push_back(o[c] + 0.96 * v[c] / len);
    }
  }
  s.rcut = 6.0;
  expect_matches_reference(s);
}

TEST(NeighborList, DeterministicAndGroupedByCentre) {
  Random rng(110);
  System s;
  s.box = general(rng, 10.0);
  s.coord = fill_box(rng, s.box, 200);
  s.rcut = 4.0;
  const NeighborList a = fast(s), b = fast(s);
  EXPECT_EQ(a.center, b.center);
  EXPECT_EQ(a.neighbor, b.neighbor);
  EXPECT_EQ(a.shift, b.shift);
  // Every atom at liquid-like density has neighbours, so every centre appears once, in order.
  std::vector<int32_t> centres(a.center);
  centres.erase(std::unique(centres.begin(), centres.end()), centres.end());
  ASSERT_EQ(centres.size(), 200u);
  for (int32_t i = 0; i < 200; ++i) EXPECT_EQ(centres[i], i);
}

TEST(NeighborList, EmptyAndSingleAtom) {
  System s;
  s.box = orthorhombic(10, 10, 10);
  EXPECT_EQ(fast(s).size(), 0u);
  s.coord = {1, 2, 3};
  EXPECT_EQ(fast(s).size(), 0u);  // its nearest image is 10 A away
  s.pbc = {false, false, false};
  s.has_box = false;
  EXPECT_EQ(fast(s).size(), 0u);
}

// Centres limited to the first n atoms: the brute-force pairs with i < n, and exactly the first
// pairs of the full list in its order (model inputs built from either are then identical).
void expect_centers_match_reference(const System& s) {
  const NeighborList full = fast(s);
  std::vector<Pair> want_all = sorted_pairs(reference(s));
  const int64_t natoms = s.natoms();
  for (int64_t n : {int64_t{0}, int64_t{1}, natoms / 3, natoms - 1, natoms}) {
    SCOPED_TRACE(::testing::Message() << n << " centres of " << natoms);
    const NeighborList got =
        build_neighbor_list_of_centers(s.coord.data(), natoms, n, s.box_ptr(), s.pbc, s.rcut);
    std::vector<Pair> want;
    std::copy_if(want_all.begin(), want_all.end(), std::back_inserter(want),
                 [n](const Pair& p) { return p[0] < n; });
    EXPECT_TRUE(sorted_pairs(got) == want) << "got:" << describe(sorted_pairs(got))
                                           << " want:" << describe(want);
    ASSERT_EQ(got.neighbor.size(), got.size());
    ASSERT_EQ(got.shift.size(), 3 * got.size());
    ASSERT_LE(got.size(), full.size());
    EXPECT_TRUE(std::equal(got.center.begin(), got.center.end(), full.center.begin()));
    EXPECT_TRUE(std::equal(got.neighbor.begin(), got.neighbor.end(), full.neighbor.begin()));
    EXPECT_TRUE(std::equal(got.shift.begin(), got.shift.end(), full.shift.begin()));
  }
}

TEST(NeighborListOfCenters, PeriodicBoxes) {
  for (uint64_t seed = 120; seed <= 125; ++seed) {
    SCOPED_TRACE(seed);
    Random rng(seed);
    System s;
    s.box = seed % 2 ? tilted(rng, 6, 14) : general(rng, rng.uniform(7, 12));
    s.coord = fill_box(rng, s.box, rng.integer(20, 120));
    s.rcut = rng.uniform(2.5, 7.0);
    expect_centers_match_reference(s);
  }
}

TEST(NeighborListOfCenters, MixedPeriodicity) {
  Random rng(130);
  System s;
  s.pbc = {true, false, true};
  s.box = tilted(rng, 6, 10);
  s.coord = fill_box(rng, s.box, 80);
  for (int i = 0; i < 80; ++i) s.coord[3 * i + 1] += rng.uniform(-8, 8);
  s.rcut = 5.0;
  expect_centers_match_reference(s);
}

TEST(NeighborListOfCenters, DomainWithGhostShell) {
  // As a LAMMPS rank sees it: owned atoms (listed first) in a cube, ghosts in a shell one cut-off
  // deep around it, no periodicity.
  Random rng(131);
  System s;
  s.pbc = {false, false, false};
  s.has_box = false;
  s.rcut = 4.0;
  const double side = 9.0, margin = s.rcut;
  std::vector<double> ghosts;
  for (int k = 0; k < 900; ++k) {
    const double x[3] = {rng.uniform(-margin, side + margin), rng.uniform(-margin, side + margin),
                         rng.uniform(-margin, side + margin)};
    const bool owned =
        x[0] >= 0 && x[0] < side && x[1] >= 0 && x[1] < side && x[2] >= 0 && x[2] < side;
    std::vector<double>& into = owned ? s.coord : ghosts;
    into.insert(into.end(), x, x + 3);
  }
  const int64_t nowned = s.natoms();
  s.coord.insert(s.coord.end(), ghosts.begin(), ghosts.end());
  expect_centers_match_reference(s);
  const NeighborList owned =
      build_neighbor_list_of_centers(s.coord.data(), s.natoms(), nowned, nullptr, s.pbc, s.rcut);
  EXPECT_TRUE(std::all_of(owned.center.begin(), owned.center.end(),
                          [&](int32_t i) { return i < nowned; }));
  EXPECT_TRUE(std::any_of(owned.neighbor.begin(), owned.neighbor.end(),
                          [&](int32_t j) { return j >= nowned; }))
      << "ghosts must be neighbours";
}

TEST(NeighborListOfCenters, RejectsCentresOutOfRange) {
  const double coord[6] = {0, 0, 0, 1, 1, 1};
  for (int64_t n : {-1, 3}) {
    try {
      build_neighbor_list_of_centers(coord, 2, n, nullptr, {false, false, false}, 3.0);
      ADD_FAILURE() << "no error for " << n << " centres";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("centres out of 2 atoms"), std::string::npos) << e.what();
    }
  }
}

void expect_error(const System& s, const std::string& fragment) {
  for (auto build : {&build_neighbor_list, &brute_force_neighbor_list}) {
    try {
      build(s.coord.data(), s.natoms(), s.box_ptr(), s.pbc, s.rcut);
      ADD_FAILURE() << "no error, expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

TEST(NeighborList, RejectsBadCutoff) {
  System s;
  s.box = orthorhombic(10, 10, 10);
  s.coord = {0, 0, 0, 1, 1, 1};
  for (double rcut : {0.0, -1.0, static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    s.rcut = rcut;
    expect_error(s, "cut-off");
  }
}

TEST(NeighborList, RejectsDegenerateBoxWithPeriodicDirection) {
  System s;
  s.coord = {0, 0, 0, 1, 1, 1};
  s.box = {};
  expect_error(s, "degenerate");
  s.box = {5, 0, 0, 0, 5, 0, 5, 5, 0};  // c = a + b
  expect_error(s, "degenerate");
  s.pbc = {true, true, false};
  s.box = {5, 0, 0, 10, 0, 0, 0, 0, 5};  // a parallel to b
  expect_error(s, "degenerate");
  s.pbc = {false, false, true};
  s.box = {5, 0, 0, 0, 5, 0, 0, 0, 0};
  expect_error(s, "degenerate");
  s.has_box = false;
  expect_error(s, "needs a box");
}

TEST(NeighborList, RejectsBoxFarThinnerThanTheCutoff) {
  // Some 10^11 images of each atom: an error, not hours of work. (Only the fast builder: the
  // reference would try them all.)
  const double coord[3] = {0, 0, 0};
  const Box box = orthorhombic(1e-3, 1e-3, 1e-3);
  try {
    build_neighbor_list(coord, 1, box.data(), {true, true, true}, 6.0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too thin"), std::string::npos) << e.what();
  }
}

TEST(NeighborList, RejectsNonFiniteCoordinatesNamingTheAtom) {
  System s;
  s.box = orthorhombic(10, 10, 10);
  s.coord = {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, NAN, 3, 4, 4, 4};
  expect_error(s, "atom 3");
  s.coord[10] = INFINITY;
  s.pbc = {false, false, false};
  expect_error(s, "atom 3");
}

}  // namespace
}  // namespace atomforge::graph
