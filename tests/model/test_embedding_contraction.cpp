// model/embedding_contraction against the plain net followed by contract_segments, through
// libtorch's autograd: T, the force pass, the training gradients of energy and force losses (the
// fused second-order path), a second force pass on one evaluation, the gradient along the
// environment in the training backward, a ForcesOnlyScope evaluation, third derivatives;
// float64 and float32, 1 and 3 threads, several blocks of neighbours and centres without any.
#include <optional>

#include <gtest/gtest.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "mlp_test_util.hpp"
#include "tensor_test_util.hpp"
#include "model/embedding_contraction.hpp"
#include "model/scalar_embedding.hpp"

namespace atomforge::model {
namespace {

using torch::autograd::grad;

using testing::expect_close;
using testing::fresh_leaves;

using ContractionFn = at::Tensor (*)(const Mlp&, const at::Tensor&, const Segments&);

struct NetCase {
  std::vector<int64_t> widths;
  bool resnet_dt;
};

// What a training step asks of the function.
struct Step {
  bool linear_energy = false;   // E linear in T: the force rows' table does not depend on T
  double energy_weight = 0.3;   // loss = energy_weight E^2 + force_weight |F - F0|^2
  double force_weight = 1.0;
  bool two_force_passes = false;  // F and a second F of the same evaluation, both in the loss
  bool along_env = false;         // the loss's gradient along env as well as the parameters'
  bool forces_only_scope = false;
};

class EmbeddingContraction : public ::testing::TestWithParam<std::tuple<at::ScalarType, NetCase, int>> {
 protected:
  void SetUp() override {
    threads_before_ = at::get_num_threads();
    at::set_num_threads(std::get<2>(GetParam()));
    at::Generator generator = at::detail::createCPUGenerator(21);
    const auto options = at::TensorOptions().dtype(dtype());
    // 17 centres with 0 .. 39 neighbours: about 330 rows, three blocks of the net and a partial one.
    const int64_t centres = 17;
    at::Tensor counts = at::randint(0, 40, {centres}, generator, at::kLong);
    counts[3] = 0;
    counts[16] = 0;
    at::Tensor start = at::zeros({centres + 1}, at::kLong);
    start.narrow(0, 1, centres).copy_(counts.cumsum(0));
    segments_ = {start, at::repeat_interleave(at::arange(centres, at::kLong), counts)};
    const int64_t rows = segments_.rows();
    env_ = at::randn({rows, 4}, generator, options);
    net_.emplace(1, std::get<1>(GetParam()).widths, std::get<1>(GetParam()).resnet_dt, "tanh", false, 0, dtype(),
               generator);
    const int64_t m = std::get<1>(GetParam()).widths.back();
    weights_ = at::randn({centres, 4, m}, generator, options) / m;
    target_forces_ = at::randn({rows, 4}, generator, options);
  }
  void TearDown() override { at::set_num_threads(threads_before_); }

  at::ScalarType dtype() const { return std::get<0>(GetParam()); }
  double tolerance() const { return dtype() == at::kDouble ? 1e-10 : 3e-4; }

  // Nonlinear, and through T's transpose as se_e2_a's D = T^T T<: the gradient reaching T is a
  // transposed (not contiguous) tensor.
  at::Tensor energy(const at::Tensor& t, bool linear) const {
    if (linear) return (t * weights_).sum();
    const at::Tensor d = at::bmm(t.transpose(1, 2), weights_.narrow(2, 0, 3).contiguous());  // (centres, m, 3)
    return at::tanh(d).sum();
  }

  // T, F = dE/denv, and the loss's gradients along the parameters (and env).
  std::vector<at::Tensor> training_step(ContractionFn f, const Step& step) const {
    testing::Leaves leaves = fresh_leaves(*net_);
    const at::Tensor env = env_.detach().clone().set_requires_grad(true);
    at::Tensor t;
    {
      std::optional<ForcesOnlyScope> scope;
      if (step.forces_only_scope) scope.emplace();
      t = f(leaves.net, env, segments_);
    }
    const at::Tensor e = energy(t, step.linear_energy);
    const at::Tensor forces = grad({e}, {env}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    at::Tensor loss = step.energy_weight * e * e + step.force_weight * (forces - target_forces_).pow(2).sum();
    if (step.two_force_passes) {
      const at::Tensor again = grad({e}, {env}, {}, true, true)[0];
      loss = loss + 0.5 * (again * again * target_forces_).sum();
    }
    std::vector<at::Tensor> inputs = leaves.params;
    if (step.along_env) inputs.push_back(env);
    auto out = grad({loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    out.insert(out.begin(), {t.detach(), forces.detach()});
    return out;
  }

  void expect_same_step(const Step& step) const {
    const auto got = training_step(embedding_contraction, step);
    const auto want = training_step(embedding_contraction_reference, step);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      const std::string what = k == 0 ? "T" : k == 1 ? "forces" : "gradient " + std::to_string(k - 2);
      if (!want[k].defined()) {
        EXPECT_TRUE(!got[k].defined() || at::equal(got[k], at::zeros_like(got[k]))) << what;
        continue;
      }
      expect_close(got[k], want[k], tolerance(), what);
    }
  }

  std::optional<Mlp> net_;
  Segments segments_;
  at::Tensor env_, weights_, target_forces_;
  int threads_before_ = 1;
};

TEST_P(EmbeddingContraction, IsTheNetFollowedByTheContraction) {
  EXPECT_TRUE(scalar_embedding_fusable(*net_, env_.narrow(1, 0, 1)));  // the fused path is the one tested
  expect_same_step(Step{});
}

TEST_P(EmbeddingContraction, TrainingOnEnergiesOnly) { expect_same_step(Step{false, 1.0, 0.0}); }

TEST_P(EmbeddingContraction, TrainingOnForcesOnlyWithAnEnergyLinearInT) {
  // No gradient reaches T itself in the training backward; only the force rows'.
  expect_same_step(Step{true, 0.0, 1.0});
}

TEST_P(EmbeddingContraction, TwoForcePassesOfOneEvaluation) {
  Step step;
  step.two_force_passes = true;
  expect_same_step(step);
}

TEST_P(EmbeddingContraction, TrainingGradientAlongTheEnvironmentToo) {
  Step step;
  step.along_env = true;
  expect_same_step(step);
}

TEST_P(EmbeddingContraction, ForcesOnlyScopeStillGivesExactParameterGradients) {
  Step step;
  step.forces_only_scope = true;
  expect_same_step(step);
}

// Inference: the force pass without a graph.
TEST_P(EmbeddingContraction, ForcePassWithoutGraph) {
  auto forces = [&](ContractionFn f) {
    const at::Tensor env = env_.detach().clone().set_requires_grad(true);
    return grad({energy(f(*net_, env, segments_), false)}, {env})[0];
  };
  expect_close(forces(embedding_contraction), forces(embedding_contraction_reference), tolerance(), "forces");
}

// A parameter gradient with a graph (its own derivatives asked for), and third derivatives along
// env: through libtorch's operators, still right.
TEST_P(EmbeddingContraction, HigherDerivatives) {
  auto higher = [&](ContractionFn f) {
    testing::Leaves leaves = fresh_leaves(*net_);
    const at::Tensor env = env_.detach().clone().set_requires_grad(true);
    const at::Tensor e = energy(f(leaves.net, env, segments_), false);
    const at::Tensor forces = grad({e}, {env}, {}, true, true)[0];
    const at::Tensor loss = (forces * target_forces_).pow(2).sum() + e * e;
    const auto first = grad({loss}, leaves.params, {}, true, true);
    at::Tensor norm = at::zeros({}, e.options());
    for (const auto& d : first) norm = norm + (d * d).sum();
    std::vector<at::Tensor> inputs = leaves.params;
    inputs.push_back(env);
    auto out = grad({norm}, inputs, {}, true, true);
    const at::Tensor second_env = grad({forces.sum()}, {env}, {}, true, true)[0];
    out.push_back(grad({(second_env * second_env).sum()}, {env})[0]);
    for (auto& t : out) t = t.detach();
    return out;
  };
  const auto got = higher(embedding_contraction), want = higher(embedding_contraction_reference);
  for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tolerance(), "output " + std::to_string(k));
}

INSTANTIATE_TEST_SUITE_P(
    Nets, EmbeddingContraction,
    ::testing::Combine(::testing::Values(at::kDouble, at::kFloat),
                       // DeePMD-kit's water widths (no residual, then doubling twice); resnet_dt
                       // with a kept width (the last layer's activations kept); without a
                       // timestep, a last layer with a residual of the same width and a one-layer
                       // net (their activations formed again from the values and slopes).
                       ::testing::Values(NetCase{{25, 50, 100}, false}, NetCase{{6, 6, 12}, true},
                                         NetCase{{4, 4}, false}, NetCase{{5}, false}),
                       ::testing::Values(1, 3)));

TEST(EmbeddingContractionFallback, OtherNetsUseThePlainPath) {
  at::Generator generator = at::detail::createCPUGenerator(4);
  const Mlp relu(1, {4, 8}, false, "relu", false, 0, at::kDouble, generator);
  const at::Tensor env = at::randn({6, 4}, generator, at::TensorOptions().dtype(at::kDouble));
  const Segments segments{at::tensor(std::vector<int64_t>{0, 2, 6}), at::tensor(std::vector<int64_t>{0, 0, 1, 1, 1, 1})};
  EXPECT_FALSE(scalar_embedding_fusable(relu, env.narrow(1, 0, 1)));
  // T by brute force: outer products of the rows, summed per centre.
  const at::Tensor outer = env.unsqueeze(2) * relu.forward(env.narrow(1, 0, 1)).unsqueeze(1);
  expect_close(embedding_contraction(relu, env, segments),
               at::zeros({2, 4, 8}, env.options()).index_add(0, segments.centre, outer), 1e-14, "relu net");
}

}  // namespace
}  // namespace atomforge::model
