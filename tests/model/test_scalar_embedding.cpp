// The fused embedding net of model/scalar_embedding against the plain Mlp through libtorch's
// autograd: values, the force pass (first derivative along the input), the training gradient of
// a force loss (second derivatives, fused), and higher derivatives (libtorch's operators);
// float64 and float32, several thread counts, block boundaries.
#include <limits>
#include <optional>

#include <gtest/gtest.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "mlp_test_util.hpp"
#include "tensor_test_util.hpp"
#include "model/block_gemm.hpp"
#include "model/fast_tanh.hpp"
#include "model/scalar_embedding.hpp"

namespace atomforge::model {
namespace {

using torch::autograd::grad;

using testing::expect_close;
using testing::expect_close_each;
using testing::fresh_leaves;
using testing::Leaves;

struct NetCase {
  std::vector<int64_t> widths;
  bool resnet_dt;
};

class ScalarEmbedding : public ::testing::TestWithParam<std::tuple<at::ScalarType, NetCase>> {
 protected:
  at::ScalarType dtype() const { return std::get<0>(GetParam()); }
  double tolerance() const { return dtype() == at::kDouble ? 1e-10 : 2e-4; }
  Mlp make_net() const {
    at::Generator generator = at::detail::createCPUGenerator(11);
    return Mlp(1, std::get<1>(GetParam()).widths, std::get<1>(GetParam()).resnet_dt, "tanh", false, 0, dtype(),
               generator);
  }
  // Inputs in the range of s(r) after normalisation; 300 rows: blocks of 128 and a partial one.
  at::Tensor make_input(int64_t rows) const {
    at::Generator generator = at::detail::createCPUGenerator(12);
    // A column of a wider matrix, as se_e2_a passes it.
    return (2 * at::randn({rows, 4}, generator, at::TensorOptions().dtype(dtype()))).narrow(1, 0, 1);
  }
};

using NetFn = at::Tensor (*)(const Mlp&, const at::Tensor&);
at::Tensor fused(const Mlp& net, const at::Tensor& x) { return scalar_embedding(net, x); }
at::Tensor plain(const Mlp& net, const at::Tensor& x) { return net.forward(x); }

TEST_P(ScalarEmbedding, ValuesAndSlopeMatchThePlainNet) {
  const Mlp net = make_net();
  ASSERT_TRUE(scalar_embedding_fusable(net, make_input(3)));
  for (int64_t rows : {0, 1, 300}) {
    const at::Tensor x = make_input(rows);
    expect_close(scalar_embedding(net, x), net.forward(x), tolerance(), "value");
    if (rows == 0) continue;
    // The reference slope against central differences of the plain net.
    const auto [value, slope] = scalar_embedding_reference(net, x);
    const double h = dtype() == at::kDouble ? 1e-5 : 1e-2;
    const at::Tensor fd = (net.forward(x + h) - net.forward(x - h)) / (2 * h);
    expect_close(slope, fd, dtype() == at::kDouble ? 1e-8 : 5e-3, "slope");
    expect_close(value, net.forward(x), tolerance(), "reference value");
  }
}

// d(sum w sin G)/d(x, parameters) without create_graph: energy training and inference forces.
TEST_P(ScalarEmbedding, FirstDerivativesMatchAutogradOfThePlainNet) {
  const Mlp net = make_net();
  const at::Tensor x0 = make_input(300);
  for (int threads : {1, 3}) {
    at::set_num_threads(threads);
    auto first = [&](NetFn f, bool params_too) {
      Leaves leaves = fresh_leaves(net);
      const at::Tensor x = x0.detach().clone().set_requires_grad(true);
      std::vector<at::Tensor> inputs = {x};
      if (params_too) inputs.insert(inputs.end(), leaves.params.begin(), leaves.params.end());
      const at::Tensor y = f(leaves.net, x);
      return grad({(y.sin() * at::linspace(0.5, 1.5, y.size(1), y.options())).sum()}, inputs);
    };
    for (bool params_too : {false, true}) {
      const auto got = first(fused, params_too), want = first(plain, params_too);
      expect_close_each(got, want, tolerance(), "threads " + std::to_string(threads) + ", input");
    }
  }
  at::set_num_threads(1);
}

// As training on forces: F = -dE/dx with create_graph, then the gradient of a loss of E and F
// with respect to the parameters and x, without create_graph (the fused second-order path).
TEST_P(ScalarEmbedding, ForceLossGradientMatchesDoubleBackwardOfThePlainNet) {
  const Mlp net = make_net();
  const at::Tensor x0 = make_input(300);
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    auto loss_gradient = [&](NetFn f, bool energy_term) {
      Leaves leaves = fresh_leaves(net);
      const at::Tensor x = x0.detach().clone().set_requires_grad(true);
      const at::Tensor y = f(leaves.net, x);
      const at::Tensor energy = (y.sin() * at::linspace(0.5, 1.5, y.size(1), y.options())).sum();
      const at::Tensor force = -grad({energy}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
      at::Tensor loss = (force * force).sum() + (force * x).sum();
      if (energy_term) loss = loss + energy * energy;
      std::vector<at::Tensor> inputs = leaves.params;
      inputs.push_back(x);
      auto out = grad({loss}, inputs);
      out.push_back(force.detach());
      return out;
    };
    for (bool energy_term : {false, true}) {
      const auto got = loss_gradient(fused, energy_term), want = loss_gradient(plain, energy_term);
      expect_close_each(got, want, tolerance(), "threads " + std::to_string(threads) + ", output");
    }
  }
  at::set_num_threads(1);
}

// Under a ForcesOnlyScope the forward keeps no activations; parameter gradients asked for later
// (an energy loss, a force loss) run the net again and must be the same.
TEST_P(ScalarEmbedding, ForcesOnlyScopeStillGivesExactParameterGradients) {
  const Mlp net = make_net();
  const at::Tensor x0 = make_input(300);
  auto gradients = [&](NetFn f, bool scoped) {
    Leaves leaves = fresh_leaves(net);
    const at::Tensor x = x0.detach().clone().set_requires_grad(true);
    at::Tensor y;
    {
      std::optional<ForcesOnlyScope> scope;
      if (scoped) scope.emplace();
      y = f(leaves.net, x);
    }
    const at::Tensor energy = (y.sin() * at::linspace(0.5, 1.5, y.size(1), y.options())).sum();
    const at::Tensor force = -grad({energy}, {x}, {}, true, true)[0];
    std::vector<at::Tensor> inputs = leaves.params;
    inputs.push_back(x);
    auto out = grad({energy * energy + (force * force).sum()}, inputs);
    out.push_back(force.detach());
    return out;
  };
  const auto got = gradients(fused, true), want = gradients(plain, false);
  for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tolerance(), "output " + std::to_string(k));
}

// Derivatives beyond the training path (a parameter gradient under create_graph, third order
// along x) go through libtorch's operators and must still be right.
TEST_P(ScalarEmbedding, HigherDerivativesMatchThePlainNet) {
  const Mlp net = make_net();
  const at::Tensor x0 = make_input(40);
  auto higher = [&](NetFn f) {
    Leaves leaves = fresh_leaves(net);
    const at::Tensor x = x0.detach().clone().set_requires_grad(true);
    const at::Tensor e = f(leaves.net, x).sin().sum();
    std::vector<at::Tensor> inputs = leaves.params;
    inputs.push_back(x);
    const auto first = grad({e}, inputs, {}, true, true);
    at::Tensor norm = at::zeros({}, e.options());
    for (const auto& d : first) norm = norm + (d * d).sum();
    auto out = grad({norm}, inputs, {}, true, true);
    const at::Tensor dx = grad({e}, {x}, {}, true, true)[0];
    const at::Tensor d2x = grad({dx.sum()}, {x}, {}, true, true)[0];
    out.push_back(grad({d2x.sum()}, {x})[0]);
    for (auto& t : out) t = t.detach();
    return out;
  };
  const auto got = higher(fused), want = higher(plain);
  for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tolerance(), "output " + std::to_string(k));
}

TEST(ScalarEmbeddingScope, OtherNetsAndDevicesUseThePlainPath) {
  at::Generator generator = at::detail::createCPUGenerator(1);
  const Mlp relu(1, {4, 8}, false, "relu", false, 0, at::kDouble, generator);
  const Mlp wide_input(2, {4, 8}, false, "tanh", false, 0, at::kDouble, generator);
  const Mlp linear_output(1, {4, 8}, false, "tanh", true, 1, at::kDouble, generator);
  const Mlp fusable(1, {4, 8}, false, "tanh", false, 0, at::kDouble, generator);
  const at::Tensor x = at::randn({5, 1}, generator, at::TensorOptions().dtype(at::kDouble));
  EXPECT_FALSE(scalar_embedding_fusable(relu, x));
  EXPECT_FALSE(scalar_embedding_fusable(wide_input, at::randn({5, 2}, at::kDouble)));
  EXPECT_FALSE(scalar_embedding_fusable(linear_output, x));
  EXPECT_TRUE(scalar_embedding_fusable(fusable, x));
  EXPECT_FALSE(scalar_embedding_fusable(fusable, x.to(at::kFloat)));  // parameters of another precision
  expect_close(scalar_embedding(relu, x), relu.forward(x), 0, "relu net");
}

// The building blocks: block_gemm against libtorch's mm (each transpose, beta 0 and 1, leading
// dimensions wider than the matrices), fast tanh against std::tanh.
template <typename T>
void expect_block_gemm_matches_mm() {
  at::Generator generator = at::detail::createCPUGenerator(4);
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const int64_t pad = 2;
  // Tiny, an outer product (k 1), large enough for the kernels' register and cache blocking, deep
  // enough to be summed in slices along k, and wide enough to be computed in slices of columns.
  for (const auto& [m, n, k] :
       {std::tuple<int64_t, int64_t, int64_t>{7, 5, 3}, {9, 6, 1}, {130, 70, 61}, {40, 33, 601}, {20, 600, 30}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 1.0}) {
          // Stored with extra columns: the leading dimension exceeds the width used.
          const at::Tensor a_store = at::randn({ta ? k : m, (ta ? m : k) + pad}, generator, options);
          const at::Tensor b_store = at::randn({tb ? n : k, (tb ? k : n) + pad}, generator, options);
          const at::Tensor a = a_store.narrow(1, 0, ta ? m : k), b = b_store.narrow(1, 0, tb ? k : n);
          at::Tensor c_store = at::randn({m, n + pad}, generator, options);
          const at::Tensor c_before = c_store.clone();
          block_gemm<T>(ta, tb, m, n, k, a_store.data_ptr<T>(), a_store.size(1), b_store.data_ptr<T>(), b_store.size(1),
                        T(beta), c_store.data_ptr<T>(), c_store.size(1));
          // Against the product in double precision, within the classical rounding bound of a
          // k-term sum of products, (k + 2) u (|op(A)| |op(B)| + |beta C|) element-wise (Higham),
          // for this product's unit roundoff u plus the reference's.
          const at::Tensor oa = (ta ? a.t() : a).to(at::kDouble), ob = (tb ? b.t() : b).to(at::kDouble);
          const at::Tensor c0 = c_before.narrow(1, 0, n).to(at::kDouble);
          const at::Tensor want = at::mm(oa, ob) + beta * c0;
          const double unit = (std::numeric_limits<T>::epsilon() + std::numeric_limits<double>::epsilon()) / 2;
          const at::Tensor bound = (k + 2) * unit * (at::mm(oa.abs(), ob.abs()) + beta * c0.abs());
          const at::Tensor error = (c_store.narrow(1, 0, n).to(at::kDouble) - want).abs();
          EXPECT_TRUE((error <= bound).all().item<bool>())
              << "block_gemm " << m << "x" << n << "x" << k << " ta " << ta << " tb " << tb << " beta " << beta
              << ": error " << error.max().item<double>() << " above its bound";
          EXPECT_TRUE(at::equal(c_store.narrow(1, n, pad), c_before.narrow(1, n, pad))) << "wrote past the matrix";
        }
}

TEST(ScalarEmbeddingKernels, BlockGemmMatchesMm) {
  expect_block_gemm_matches_mm<double>();
  expect_block_gemm_matches_mm<float>();
}

template <typename T>
void expect_fast_tanh_matches_std(double absolute, double relative) {
  std::vector<T> z, bias = {T(0.25), T(-0.5), T(0)};
  for (int i = -4000; i <= 4000; ++i) z.push_back(T(i * 0.005));       // the range that matters
  for (double v : {1e-12, -3e-9, 1e-5, 0.03, 0.032, 20.0, -40.0, 400.0, -1e300}) z.push_back(T(v));
  z.resize(z.size() + (3 - z.size() % 3), T(0));
  std::vector<T> got = z;
  bias_tanh_rows(got.data(), bias.data(), static_cast<int64_t>(z.size() / 3), 3);
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double want = std::tanh(static_cast<double>(z[i] + bias[i % 3]));
    EXPECT_LE(std::fabs(got[i] - want), std::max(absolute, relative * std::fabs(want))) << "tanh(" << z[i] + bias[i % 3] << ")";
  }
  std::vector<T> special = {T(INFINITY), T(-INFINITY), T(NAN)}, zero(3, T(0));
  bias_tanh_rows(special.data(), zero.data(), 1, 3);
  EXPECT_EQ(special[0], T(1));
  EXPECT_EQ(special[1], T(-1));
  EXPECT_TRUE(std::isnan(special[2]));
}

TEST(ScalarEmbeddingKernels, FastTanhMatchesStdTanh) {
  expect_fast_tanh_matches_std<double>(3e-16, 2e-15);
  expect_fast_tanh_matches_std<float>(1.2e-7, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    Nets, ScalarEmbedding,
    ::testing::Combine(::testing::Values(at::kDouble, at::kFloat),
                       // DeePMD-kit's water widths (no residual, then doubling twice); and
                       // resnet_dt with a kept width.
                       ::testing::Values(NetCase{{25, 50, 100}, false}, NetCase{{6, 6, 12}, true})));

}  // namespace
}  // namespace atomforge::model
