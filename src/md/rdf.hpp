#pragma once
// Radial distribution functions of a periodic system, per element pair, averaged over frames:
// g_ab(r) = <n_ab(r, r + dr)> V / (N_a (N_b - delta_ab) v_shell), with n_ab the ordered pairs
// (i of a, j of b, any periodic image) at that distance and v_shell the exact shell volume, so an
// ideal gas gives 1 at every r, also beyond half the box. The running coordination number (b
// atoms within r of an a atom) is the cumulative pair count per a atom.
#include <cstdint>
#include <string>
#include <vector>

namespace atomforge::md {

class Rdf {
 public:
  // `types` index `elements` (names for the table); rmax may exceed half the box.
  Rdf(std::vector<int32_t> types, std::vector<std::string> elements, double rmax, int64_t nbins);
  void sample(const double* position, const double* box);
  int64_t frames() const { return frames_; }
  double bin_centre(int64_t bin) const { return (static_cast<double>(bin) + 0.5) * width_; }
  // g of element types a and b (symmetric), or of all atoms with a = b = -1.
  double g(int32_t a, int32_t b, int64_t bin) const;
  // Mean number of b atoms within the outer edge of `bin` of an a atom.
  double coordination(int32_t a, int32_t b, int64_t bin) const;
  // Columns r, g of every pair of present elements and of all atoms, then coordination numbers.
  std::string table() const;

 private:
  int64_t count_of(int32_t t) const;
  std::vector<int32_t> types_;
  std::vector<std::string> elements_;
  std::vector<int32_t> present_;  // element types that occur
  double rmax_, width_;
  int64_t nbins_, frames_ = 0;
  // Per ordered element pair (a, b), per bin: pairs summed over frames, and weighted by volume.
  std::vector<double> pairs_, pairs_times_volume_;
};

}  // namespace atomforge::md
