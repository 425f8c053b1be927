// backward_to_parameters against libtorch's full backward (Tensor::backward, which also carries
// the gradient down to the edge vectors): the same parameter gradients for a loss on energies and
// forces (second derivatives), none for a frozen parameter; and against central differences of
// the loss, which share no code with the fused derivatives.
#include <gtest/gtest.h>

#include "../model/model_test_util.hpp"
#include "train/backward.hpp"

namespace atomforge::train {
namespace {

at::Tensor loss_of(const model::EnergyModel& m, const data::System& frame) {
  const model::Prediction p = m.evaluate(m.prepare(frame, {0}), true);
  at::Generator generator = at::detail::createCPUGenerator(3);
  const at::Tensor w = at::randn(p.force.sizes(), generator, p.force.options());
  return 0.3 * p.energy.sum() + (p.force * w).pow(2).sum();
}

TEST(BackwardToParameters, SameGradientsAsTheFullBackward) {
  auto m = testing::small_model({"O", "H"}, {10, 20}, 4.0);
  testing::roughen(*m, 2.0);
  const auto& params = m->parameters().parameters();
  params.front().second->set_requires_grad(false);  // a frozen parameter
  const data::System frame = testing::single_frame("water/data_0", 0);

  loss_of(*m, frame).backward();
  std::vector<at::Tensor> want;
  for (const auto& [name, t] : params) {
    want.push_back(t->grad().defined() ? t->grad().clone() : at::Tensor());
    t->mutable_grad() = at::Tensor();
  }
  backward_to_parameters(loss_of(*m, frame), m->parameters());
  int64_t compared = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    const at::Tensor& got = params[k].second->grad();
    ASSERT_EQ(got.defined(), want[k].defined()) << params[k].first;
    if (!got.defined()) continue;
    EXPECT_TRUE(at::allclose(got, want[k], 1e-12, 1e-12)) << params[k].first;
    ++compared;
  }
  EXPECT_FALSE(params.front().second->grad().defined());
  EXPECT_EQ(compared, static_cast<int64_t>(params.size()) - 1);
}

TEST(BackwardToParameters, MatchesFiniteDifferencesOfAForceLoss) {
  auto m = testing::small_model({"O", "H"}, {10, 20}, 4.0);
  testing::roughen(*m, 2.0);
  const data::System frame = testing::single_frame("water/data_0", 0);
  backward_to_parameters(loss_of(*m, frame), m->parameters());
  int64_t checked = 0;
  for (const auto& [name, tensor] : m->parameters().parameters()) {
    // One entry of each embedding and fitting tensor (weights, biases, timesteps).
    const at::Tensor flat = tensor->detach().view({-1});
    const int64_t k = flat.numel() / 2;
    const double analytic = tensor->grad().view({-1})[k].item<double>();
    const double h = 1e-5, original = flat[k].item<double>();
    auto loss_at = [&](double value) {
      {
        at::NoGradGuard no_grad;
        flat[k] = value;
      }
      return loss_of(*m, frame).item<double>();
    };
    const double plus = loss_at(original + h), minus = loss_at(original - h);
    loss_at(original);
    const double numeric = (plus - minus) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace atomforge::train
