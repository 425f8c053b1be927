#include "md/rdf.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "graph/neighbor_list.hpp"

namespace atomforge::md {

namespace {

double volume_of(const double* h) {
  return std::abs(h[0] * (h[4] * h[8] - h[5] * h[7]) - h[1] * (h[3] * h[8] - h[5] * h[6]) +
                  h[2] * (h[3] * h[7] - h[4] * h[6]));
}

}  // namespace

Rdf::Rdf(std::vector<int32_t> types, std::vector<std::string> elements, double rmax, int64_t nbins)
    : types_(std::move(types)), elements_(std::move(elements)), rmax_(rmax), width_(rmax / static_cast<double>(nbins)),
      nbins_(nbins) {
  if (!(rmax > 0) || nbins < 1) fail("rdf: rmax must be > 0 and nbins >= 1 (got {}, {})", rmax, nbins);
  for (int32_t t : types_) {
    if (t < 0 || t >= static_cast<int32_t>(elements_.size())) fail("rdf: atom type {} has no element name", t);
    if (std::find(present_.begin(), present_.end(), t) == present_.end()) present_.push_back(t);
  }
  std::sort(present_.begin(), present_.end());
  const std::size_t nt = elements_.size();
  pairs_.assign(nt * nt * static_cast<std::size_t>(nbins_), 0.0);
  pairs_times_volume_ = pairs_;
}

void Rdf::sample(const double* position, const double* box) {
  const double volume = volume_of(box);
  if (!(volume > 0)) fail("rdf: the cell has zero volume");
  const auto natoms = static_cast<int64_t>(types_.size());
  const graph::NeighborList nl = graph::build_neighbor_list(position, natoms, box, {true, true, true}, rmax_);
  const std::size_t nt = elements_.size();
  for (std::size_t p = 0; p < nl.size(); ++p) {
    const int32_t i = nl.center[p], j = nl.neighbor[p];
    const int32_t* s = &nl.shift[3 * p];
    double r2 = 0;
    for (int d = 0; d < 3; ++d) {
      const double r = position[3 * j + d] - position[3 * i + d] + s[0] * box[d] + s[1] * box[3 + d] + s[2] * box[6 + d];
      r2 += r * r;
    }
    const auto bin = static_cast<int64_t>(std::sqrt(r2) / width_);
    if (bin >= nbins_) continue;
    const std::size_t k = (types_[i] * nt + types_[j]) * static_cast<std::size_t>(nbins_) + bin;
    pairs_[k] += 1.0;
    pairs_times_volume_[k] += volume;
  }
  ++frames_;
}

int64_t Rdf::count_of(int32_t t) const {
  return t < 0 ? static_cast<int64_t>(types_.size()) : std::count(types_.begin(), types_.end(), t);
}

double Rdf::g(int32_t a, int32_t b, int64_t bin) const {
  const std::size_t nt = elements_.size();
  double pairs_v = 0;
  for (std::size_t ta = 0; ta < nt; ++ta) {
    for (std::size_t tb = 0; tb < nt; ++tb) {
      if (a >= 0 && (ta != static_cast<std::size_t>(a) || tb != static_cast<std::size_t>(b))) continue;
      pairs_v += pairs_times_volume_[(ta * nt + tb) * static_cast<std::size_t>(nbins_) + bin];
    }
  }
  const double na = static_cast<double>(count_of(a));
  const double nb = static_cast<double>(count_of(b)) - (a == b ? 1.0 : 0.0);
  const double r0 = static_cast<double>(bin) * width_, r1 = r0 + width_;
  const double shell = 4.0 / 3.0 * M_PI * (r1 * r1 * r1 - r0 * r0 * r0);
  if (frames_ == 0 || na * nb <= 0) return 0.0;
  return pairs_v / (static_cast<double>(frames_) * na * nb * shell);
}

double Rdf::coordination(int32_t a, int32_t b, int64_t bin) const {
  const std::size_t nt = elements_.size();
  double pairs = 0;
  for (int64_t k = 0; k <= bin; ++k) pairs += pairs_[(a * nt + b) * static_cast<std::size_t>(nbins_) + k];
  const double na = static_cast<double>(count_of(a));
  return frames_ == 0 || na == 0 ? 0.0 : pairs / (static_cast<double>(frames_) * na);
}

std::string Rdf::table() const {
  std::string out = fmt::format("# radial distribution functions over {} frames; n_A_B: mean number of B within r "
                                "of an A (r is the bin centre, counts to the bin's outer edge)\n# r_A",
                                frames_);
  std::vector<std::pair<int32_t, int32_t>> pairs, ordered;
  for (std::size_t x = 0; x < present_.size(); ++x) {
    for (std::size_t y = x; y < present_.size(); ++y) pairs.emplace_back(present_[x], present_[y]);
    for (std::size_t y = 0; y < present_.size(); ++y) ordered.emplace_back(present_[x], present_[y]);
  }
  for (const auto& [a, b] : pairs) out += fmt::format(" g_{}_{}", elements_[a], elements_[b]);
  out += " g_all";
  for (const auto& [a, b] : ordered) out += fmt::format(" n_{}_{}", elements_[a], elements_[b]);
  out += "\n";
  for (int64_t bin = 0; bin < nbins_; ++bin) {
    out += fmt::format("{:.6f}", bin_centre(bin));
    for (const auto& [a, b] : pairs) out += fmt::format(" {:.6e}", g(a, b, bin));
    out += fmt::format(" {:.6e}", g(-1, -1, bin));
    for (const auto& [a, b] : ordered) out += fmt::format(" {:.6e}", coordination(a, b, bin));
    out += "\n";
  }
  return out;
}

}  // namespace atomforge::md
