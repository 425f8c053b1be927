// The fused tanh layer of model/tanh_layer against the same expression in libtorch operators:
// values, first derivatives (the force pass), second derivatives through the fused kernel (the
// training gradient of a force loss) and third derivatives; each residual kind, with and without
// idt, float64 and float32, one and three threads (column sums split over row parts).
#include <gtest/gtest.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "tensor_test_util.hpp"
#include "model/tanh_layer.hpp"

namespace atomforge::model {
namespace {

using torch::autograd::grad;
using testing::expect_close;

struct LayerCase {
  int64_t in, out;
  bool idt;
};

class TanhLayer : public ::testing::TestWithParam<std::tuple<at::ScalarType, LayerCase, int>> {
 protected:
  void SetUp() override {
    previous_threads_ = at::get_num_threads();
    at::set_num_threads(std::get<2>(GetParam()));
  }
  void TearDown() override { at::set_num_threads(previous_threads_); }
  at::ScalarType dtype() const { return std::get<0>(GetParam()); }
  const LayerCase& layer() const { return std::get<1>(GetParam()); }
  double tolerance() const { return dtype() == at::kDouble ? 1e-12 : 2e-5; }
  at::Tensor random(at::IntArrayRef shape, double scale, uint64_t seed) const {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return (scale * at::randn(shape, generator, at::TensorOptions().dtype(at::kDouble))).to(dtype());
  }
  // p, b, idt (undefined without), x as leaves; 300 rows: several row parts on three threads.
  std::vector<at::Tensor> leaves() const {
    const int64_t n = 300;
    std::vector<at::Tensor> out = {random({n, layer().out}, 1.5, 1), random({layer().out}, 1.0, 2),
                                   layer().idt ? 0.1 + random({layer().out}, 0.05, 3) : at::Tensor(),
                                   random({n, layer().in}, 1.0, 4)};
    for (auto& t : out)
      if (t.defined()) t.set_requires_grad(true);
    return out;
  }
  static std::vector<at::Tensor> defined(const std::vector<at::Tensor>& ts) {
    std::vector<at::Tensor> out;
    for (const auto& t : ts)
      if (t.defined()) out.push_back(t);
    return out;
  }
  int previous_threads_ = 1;
};

using LayerFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&);

// Sum over the chosen first derivatives (indices into the defined leaves) of their product with
// fixed random weights: a scalar whose gradient is a second derivative.
at::Tensor weighted(const std::vector<at::Tensor>& grads, const std::vector<std::size_t>& chosen, uint64_t seed) {
  at::Tensor total;
  for (std::size_t k : chosen) {
    at::Generator generator = at::detail::createCPUGenerator(seed + k);
    const at::Tensor w = at::randn(grads[k].sizes(), generator, at::TensorOptions().dtype(at::kDouble)).to(grads[k].scalar_type());
    const at::Tensor term = (grads[k] * w).sum();
    total = total.defined() ? total + term : term;
  }
  return total;
}

// Gradients of the same inputs: defined for the same ones (an input a scalar does not depend on
// has none) and close where defined.
void expect_same(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want, double tolerance,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].defined(), want[k].defined()) << what << " " << k;
    if (want[k].defined()) expect_close(got[k], want[k], tolerance, what + " " + std::to_string(k));
  }
}

TEST_P(TanhLayer, MatchesOperatorsToThirdDerivatives) {
  const auto x = leaves();
  const auto inputs = defined(x);
  const at::Tensor w = random({300, layer().out}, 1.0, 5);
  struct Results {
    at::Tensor value;
    std::vector<at::Tensor> first, second_fused, second, third;
  };
  // Subsets of first derivatives a loss may depend on: all; p's alone (the force pass feeds p's
  // gradient into the matrix product); b's and idt's alone (no row gradient arrives).
  std::vector<std::vector<std::size_t>> subsets = {{0, 1, 2}, {0}, {1, 2}};
  if (!layer().idt) subsets = {{0, 1}, {0}, {1}};
  for (const auto& chosen : subsets) {
    auto run = [&](LayerFn fn) {
      Results r;
      r.value = fn(x[0], x[1], x[2], x[3]);
      r.first = grad({(r.value * w).sum()}, inputs, {}, true, true, true);
      // With create_graph false the fused path runs its closed-form kernel; with true, the
      // libtorch form that third derivatives go through.
      r.second_fused = grad({weighted(r.first, chosen, 10)}, inputs, {}, true, false, true);
      r.second = grad({weighted(r.first, chosen, 10)}, inputs, {}, true, true, true);
      std::vector<at::Tensor> second_defined;
      std::vector<std::size_t> all;
      for (std::size_t k = 0; k < r.second.size(); ++k)
        if (r.second[k].defined() && r.second[k].requires_grad()) {
          second_defined.push_back(r.second[k]);
          all.push_back(second_defined.size() - 1);
        }
      if (!all.empty()) r.third = grad({weighted(second_defined, all, 20)}, inputs, {}, false, false, true);
      return r;
    };
    const Results fused = run(tanh_layer), reference = run(tanh_layer_reference);
    const std::string what = "derivatives " + std::to_string(chosen.size());
    expect_close(fused.value, reference.value, tolerance(), "value");
    expect_same(fused.first, reference.first, tolerance(), "first " + what);
    expect_same(fused.second_fused, reference.second_fused, tolerance(), "second (fused) " + what);
    expect_same(fused.second, reference.second, tolerance(), "second " + what);
    expect_same(fused.third, reference.third, tolerance(), "third " + what);
  }
}

// float64 only: float32's rounding swamps central differences.
class TanhLayerInDouble : public TanhLayer {};

TEST_P(TanhLayerInDouble, DerivativesMatchFiniteDifferences) {
  // The reference above could share a mistake in the formula; central differences of the value
  // check the first derivative of p independently.
  const auto x = leaves();
  const at::Tensor w = random({300, layer().out}, 1.0, 6);
  const auto g = grad({(tanh_layer(x[0], x[1], x[2], x[3]) * w).sum()}, {x[0]}, {}, false, false, false)[0];
  const double h = 1e-6;
  for (const auto& [r, c] : {std::pair<int64_t, int64_t>{0, 0}, {17, 5}, {299, layer().out - 1}}) {
    at::Tensor plus = x[0].detach().clone(), minus = x[0].detach().clone();
    plus[r][c] += h;
    minus[r][c] -= h;
    const double fd = ((tanh_layer(plus, x[1], x[2], x[3]) * w).sum().item<double>() -
                       (tanh_layer(minus, x[1], x[2], x[3]) * w).sum().item<double>()) /
                      (2 * h);
    EXPECT_NEAR(g[r][c].item<double>(), fd, 1e-7 * std::max(1.0, std::abs(fd))) << r << "," << c;
  }
}

const auto kLayers = ::testing::Values(LayerCase{240, 240, true}, LayerCase{120, 240, true},
                                       LayerCase{100, 240, false}, LayerCase{240, 240, false});

std::string case_name(const ::testing::TestParamInfo<std::tuple<at::ScalarType, LayerCase, int>>& info) {
  const auto& [dtype, layer, threads] = info.param;
  return std::string(dtype == at::kDouble ? "float64" : "float32") + "_" + std::to_string(layer.in) + "to" +
         std::to_string(layer.out) + (layer.idt ? "_idt" : "") + "_" + std::to_string(threads) + "threads";
}

INSTANTIATE_TEST_SUITE_P(Layers, TanhLayer,
                         ::testing::Combine(::testing::Values(at::kDouble, at::kFloat), kLayers, ::testing::Values(1, 3)),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Layers, TanhLayerInDouble,
                         ::testing::Combine(::testing::Values(at::kDouble), kLayers, ::testing::Values(1, 3)), case_name);

TEST(TanhLayerEmpty, NoRows) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor p = at::zeros({0, 8}, options).set_requires_grad(true);
  const at::Tensor b = at::zeros({8}, options).set_requires_grad(true);
  const at::Tensor y = tanh_layer(p, b, at::Tensor(), at::zeros({0, 8}, options));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{0, 8}));
  const auto g = grad({y.sum()}, {b}, {}, false, false, false);
  EXPECT_EQ(g[0].abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace atomforge::model
