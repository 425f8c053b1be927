#pragma once
// A plain-loop se_e2_a + energy fitting written from ../shared/docs/deepmd-conventions.md, on
// weights named as our parameters: brute-force neighbours over periodic images, per-type
// nearest-first sel blocks with zero padding, switch function, normalisation, embedding nets with
// DeePMD-kit's skip rules, T = R~^T G / nnei, D = T^T T[:, :axis], per-type fitting nets and bias.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "data/system.hpp"

namespace atomforge::testing {

using Matrix = std::vector<std::vector<double>>;

struct Weights {
  std::map<std::string, at::Tensor> by_name;
  const at::Tensor& operator[](const std::string& name) const { return by_name.at(name); }
  bool has(const std::string& name) const { return by_name.count(name) > 0; }
};

inline std::vector<double> dense(const Weights& w, const std::string& prefix, int layer, const std::vector<double>& x,
                          bool activate) {
  const std::string p = prefix + "layers." + std::to_string(layer) + ".";
  const at::Tensor m = w[p + "w"].to(at::kDouble), b = w[p + "b"].to(at::kDouble);
  const int64_t in = m.size(0), out = m.size(1);
  std::vector<double> y(out);
  for (int64_t o = 0; o < out; ++o) {
    double acc = b[o].item<double>();
    for (int64_t i = 0; i < in; ++i) acc += x[i] * m[i][o].item<double>();
    y[o] = acc;
  }
  if (!activate) return y;
  for (int64_t o = 0; o < out; ++o) {
    y[o] = std::tanh(y[o]);
    if (w.has(p + "idt")) y[o] *= w[p + "idt"][o].item<double>();
    if (out == in) y[o] += x[o];
    if (out == 2 * in) y[o] += x[o % in];
  }
  return y;
}

inline std::vector<double> network(const Weights& w, const std::string& prefix, std::vector<double> x, bool linear_out) {
  int layers = 0;
  while (w.has(prefix + "layers." + std::to_string(layers) + ".w")) ++layers;
  for (int l = 0; l < layers; ++l) x = dense(w, prefix, l, x, !(linear_out && l == layers - 1));
  return x;
}

inline double reference_energy(const data::System& s, const Weights& w, const std::vector<int64_t>& sel, double rcut,
                        double rcut_smth, int64_t axis, bool type_one_side) {
  const int64_t n = s.natoms(), ntypes = static_cast<int64_t>(sel.size());
  int64_t nnei = 0;
  for (auto v : sel) nnei += v;
  double energy = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Every neighbour over enough images, per type, nearest first.
    std::vector<std::vector<std::pair<double, std::array<double, 3>>>> by_type(ntypes);
    const int images = s.pbc ? 3 : 0;
    for (int64_t j = 0; j < n; ++j)
      for (int a = -images; a <= images; ++a)
        for (int b = -images; b <= images; ++b)
          for (int c = -images; c <= images; ++c) {
            if (j == i && a == 0 && b == 0 && c == 0) continue;
            std::array<double, 3> r;
            for (int d = 0; d < 3; ++d)
              r[d] = s.coord[3 * j + d] - s.coord[3 * i + d] +
                     (s.pbc ? a * s.box[d] + b * s.box[3 + d] + c * s.box[6 + d] : 0.0);
            const double dist = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
            if (dist < rcut) by_type[s.types[j]].push_back({dist, r});
          }
    const int ti = s.types[i];
    const at::Tensor davg = w["descriptor.davg"].to(at::kDouble), dstd = w["descriptor.dstd"].to(at::kDouble);
    const std::vector<double> empty;
    Matrix t_matrix(4, std::vector<double>(static_cast<std::size_t>(0)));
    int64_t slot = 0;
    for (int64_t tj = 0; tj < ntypes; ++tj) {
      auto& list = by_type[tj];
      std::sort(list.begin(), list.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      for (int64_t k = 0; k < sel[tj]; ++k, ++slot) {
        std::array<double, 4> row{0, 0, 0, 0};
        if (k < static_cast<int64_t>(list.size())) {
          const double r = list[k].first;
          const double u = std::clamp((r - rcut_smth) / (rcut - rcut_smth), 0.0, 1.0);
          const double sw = u * u * u * (-6 * u * u + 15 * u - 10) + 1;
          row = {sw / r, sw / r * list[k].second[0] / r, sw / r * list[k].second[1] / r, sw / r * list[k].second[2] / r};
        }
        for (int d = 0; d < 4; ++d)
          row[d] = (row[d] - davg[ti][slot][d].item<double>()) / dstd[ti][slot][d].item<double>();
        const std::string net = type_one_side ? std::to_string(tj) : std::to_string(ti) + "_" + std::to_string(tj);
        const auto g = network(w, "descriptor.embedding." + net + ".", {row[0]}, false);
        if (t_matrix[0].empty())
          for (auto& r : t_matrix) r.assign(g.size(), 0.0);
        for (int d = 0; d < 4; ++d)
          for (std::size_t m = 0; m < g.size(); ++m) t_matrix[d][m] += row[d] * g[m] / static_cast<double>(nnei);
      }
    }
    const std::size_t m1 = t_matrix[0].size();
    std::vector<double> descriptor;
    for (std::size_t a = 0; a < m1; ++a)
      for (int64_t b = 0; b < axis; ++b) {
        double acc = 0;
        for (int d = 0; d < 4; ++d) acc += t_matrix[d][a] * t_matrix[d][b];
        descriptor.push_back(acc);
      }
    energy += network(w, "fitting.default.net." + std::to_string(ti) + ".", descriptor, true)[0] +
              w["bias.default"][ti].item<double>();
  }
  return energy;
}

}  // namespace atomforge::testing
