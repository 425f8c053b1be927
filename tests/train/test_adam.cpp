// Adam's fused update against PyTorch's update rule written out with libtorch operators, over
// steps with changing gradients and learning rates; float64, float32, and a non-contiguous
// parameter (the operator path). The fused parameters run as one range over the threads: the
// sizes put a thread's share across the boundaries between parameters.
#include <gtest/gtest.h>
#include <ATen/Parallel.h>

#include "train/adam.hpp"

namespace atomforge::train {
namespace {

TEST(Adam, MatchesPyTorchsUpdateRule) {
  at::Generator generator = at::detail::createCPUGenerator(21);
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    at::Tensor big = at::randn({70000}, generator, at::kDouble).set_requires_grad(true);  // several parallel chunks
    at::Tensor small = at::randn({5, 3}, generator, at::kFloat).set_requires_grad(true);
    at::Tensor next = at::randn({20001}, generator, at::kDouble).set_requires_grad(true);
    at::Tensor strided = at::randn({4, 6}, generator, at::kDouble).t().set_requires_grad(true);
    model::ParameterList list;
    list.add_parameter("big", &big);
    list.add_parameter("small", &small);
    list.add_parameter("strided", &strided);
    list.add_parameter("next", &next);
    std::vector<at::Tensor> want = {big.detach().clone(), small.detach().clone(), strided.detach().clone(),
                                    next.detach().clone()};
    std::vector<at::Tensor> m, v;
    for (const auto& w : want) {
      m.push_back(at::zeros_like(w));
      v.push_back(at::zeros_like(w));
    }
    Adam adam(list, beta1, beta2, eps);
    for (int step = 1; step <= 4; ++step) {
      const double lr = 1e-3 * step;
      std::vector<at::Tensor*> params = {&big, &small, &strided, &next};
      for (std::size_t k = 0; k < params.size(); ++k) {
        const at::Tensor g = at::randn(params[k]->sizes(), generator, params[k]->options().requires_grad(false));
        params[k]->mutable_grad() = g;
        m[k] = beta1 * m[k] + (1 - beta1) * g;
        v[k] = beta2 * v[k] + (1 - beta2) * g * g;
        const double bias1 = 1 - std::pow(beta1, step), bias2 = 1 - std::pow(beta2, step);
        want[k] = want[k] - lr / bias1 * m[k] / (v[k].sqrt() / std::sqrt(bias2) + eps);
      }
      adam.step(lr);
      for (std::size_t k = 0; k < params.size(); ++k) {
        const double tolerance = params[k]->scalar_type() == at::kDouble ? 1e-14 : 1e-6;
        EXPECT_LE((params[k]->detach() - want[k]).abs().max().item<double>(), tolerance)
            << "parameter " << k << ", step " << step << ", threads " << threads;
        EXPECT_FALSE(params[k]->grad().defined()) << "gradients are cleared";
      }
    }
  }
  at::set_num_threads(1);
}

}  // namespace
}  // namespace atomforge::train
