#include "md/msd.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"

namespace atomforge::md {

namespace {

// Time origins used per lag at most: all of them up to this many samples, then evenly spaced, so
// the cost stays O(samples x kMaxOrigins x atoms).
constexpr int64_t kMaxOrigins = 500;

}  // namespace

double diffusion_coefficient(const std::vector<double>& time, const std::vector<double>& msd) {
  if (time.empty()) return 0.0;
  const double t_max = time.back();
  double n = 0, st = 0, sm = 0, stt = 0, stm = 0;
  for (std::size_t k = 0; k < time.size(); ++k) {
    if (time[k] < kFitFrom * t_max || time[k] > kFitTo * t_max) continue;
    n += 1;
    st += time[k];
    sm += msd[k];
    stt += time[k] * time[k];
    stm += time[k] * msd[k];
  }
  const double denominator = n * stt - st * st;
  if (n < 2 || denominator <= 0) return 0.0;
  return (n * stm - st * sm) / denominator / 6.0;
}

Msd::Msd(std::vector<int32_t> types, std::vector<std::string> elements, double interval_fs)
    : types_(std::move(types)), elements_(std::move(elements)), interval_(interval_fs) {
  for (int32_t t : types_) {
    if (t < 0 || t >= static_cast<int32_t>(elements_.size())) fail("msd: atom type {} has no element name", t);
    if (std::find(present_.begin(), present_.end(), t) == present_.end()) present_.push_back(t);
  }
  std::sort(present_.begin(), present_.end());
}

void Msd::sample(const double* unwrapped_position) {
  frames_.emplace_back(unwrapped_position, unwrapped_position + 3 * types_.size());
}

MsdTable Msd::compute() const {
  MsdTable table;
  for (int32_t t : present_) table.groups.push_back(elements_[t]);
  table.groups.push_back("all");
  const auto nsamples = static_cast<int64_t>(frames_.size());
  const std::size_t ngroups = table.groups.size();
  table.msd.assign(ngroups, {});
  std::vector<double> count(ngroups);
  for (std::size_t g = 0; g < ngroups; ++g) {
    count[g] = g + 1 < ngroups ? static_cast<double>(std::count(types_.begin(), types_.end(), present_[g]))
                               : static_cast<double>(types_.size());
  }
  std::vector<std::size_t> group_of(types_.size());
  for (std::size_t i = 0; i < types_.size(); ++i)
    group_of[i] = static_cast<std::size_t>(std::find(present_.begin(), present_.end(), types_[i]) - present_.begin());
  for (int64_t lag = 0; lag < nsamples; ++lag) {
    const int64_t norigins = nsamples - lag;
    const int64_t stride = std::max<int64_t>(1, norigins / kMaxOrigins);
    std::vector<double> sum(ngroups, 0.0);
    int64_t used = 0;
    for (int64_t origin = 0; origin < norigins; origin += stride, ++used) {
      const std::vector<double>& a = frames_[origin];
      const std::vector<double>& b = frames_[origin + lag];
      for (std::size_t i = 0; i < types_.size(); ++i) {
        double d2 = 0;
        for (int d = 0; d < 3; ++d) {
          const double dx = b[3 * i + d] - a[3 * i + d];
          d2 += dx * dx;
        }
        sum[group_of[i]] += d2;
        sum[ngroups - 1] += d2;
      }
    }
    table.time.push_back(static_cast<double>(lag) * interval_);
    for (std::size_t g = 0; g < ngroups; ++g) table.msd[g].push_back(sum[g] / (count[g] * static_cast<double>(used)));
  }
  return table;
}

std::string Msd::table() const {
  const MsdTable t = compute();
  // 1 A^2/fs = 1e-20 m^2 / 1e-15 s = 1e-5 m^2/s = 0.1 cm^2/s.
  std::string out = fmt::format("# mean squared displacement over {} samples, all time origins{}; D from a fit over "
                                "lags {}..{} of the longest\n",
                                samples(), samples() > kMaxOrigins ? " (evenly thinned)" : "", kFitFrom, kFitTo);
  for (std::size_t g = 0; g < t.groups.size(); ++g) {
    const double d = diffusion_coefficient(t.time, t.msd[g]);
    out += fmt::format("# D_{} = {:.6e} A^2/fs = {:.6e} cm^2/s\n", t.groups[g], d, d * 0.1);
  }
  out += "# time_fs";
  for (const auto& name : t.groups) out += " msd_" + name + "_A2";
  out += "\n";
  for (std::size_t k = 0; k < t.time.size(); ++k) {
    out += fmt::format("{:.4f}", t.time[k]);
    for (std::size_t g = 0; g < t.groups.size(); ++g) out += fmt::format(" {:.6e}", t.msd[g][k]);
    out += "\n";
  }
  return out;
}

}  // namespace atomforge::md
