#pragma once
// Mean squared displacement of unwrapped positions, per element and over all atoms, averaged over
// atoms and time origins, and the self-diffusion coefficient D = slope / 6 of a least-squares
// line through MSD(t) over the diffusive part of the curve.
#include <cstdint>
#include <string>
#include <vector>

namespace atomforge::md {

struct MsdTable {
  std::vector<double> time;              // lag, fs
  std::vector<std::string> groups;       // element names, then "all"
  std::vector<std::vector<double>> msd;  // [group][lag], A^2
};

// D in A^2/fs from the least-squares slope of msd against time over lags in
// [kFitFrom, kFitTo] x the longest lag: skips the ballistic start and the noisy end (few origins).
inline constexpr double kFitFrom = 0.2, kFitTo = 0.6;
double diffusion_coefficient(const std::vector<double>& time, const std::vector<double>& msd);

class Msd {
 public:
  // Samples are `interval_fs` apart; `types` index `elements`.
  Msd(std::vector<int32_t> types, std::vector<std::string> elements, double interval_fs);
  void sample(const double* unwrapped_position);
  int64_t samples() const { return static_cast<int64_t>(frames_.size()); }
  MsdTable compute() const;
  // Columns time and MSD per group, with D per group in the header.
  std::string table() const;

 private:
  std::vector<int32_t> types_;
  std::vector<std::string> elements_;
  std::vector<int32_t> present_;
  double interval_;
  std::vector<std::vector<double>> frames_;
};

}  // namespace atomforge::md
