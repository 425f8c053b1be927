// swish(x) = x sigmoid(x) (SiLU) and its derivatives as single element-wise passes. Composed from
// sigmoid and mul, a swish costs several passes over the tensor forward and more in each
// derivative pass; DimeNet and PaiNN apply it on every edge in every layer.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/cpu_kernels.hpp"
#include "model/linear.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 4096;

enum class Order { kFirst, kSecond };

// g swish'(x) (kFirst) or g swish''(x) (kSecond) from x and s = sigmoid(x), kept from the
// forward pass (libtorch's sigmoid is vectorised; these loops need no exponential).
at::Tensor derivative(const at::Tensor& g_in, const at::Tensor& x_in, const at::Tensor& s_in, Order order) {
  const at::Tensor x = x_in.contiguous(), s = s_in.contiguous(), g = g_in.expand_as(x).contiguous();
  at::Tensor out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "swish_derivative", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* sp = s.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      if (order == Order::kFirst)
        for (int64_t i = begin; i < end; ++i) o[i] = gp[i] * sp[i] * (scalar_t(1) + xp[i] * (scalar_t(1) - sp[i]));
      else
        for (int64_t i = begin; i < end; ++i)
          o[i] = gp[i] * sp[i] * (scalar_t(1) - sp[i]) * (scalar_t(2) + xp[i] * (scalar_t(1) - scalar_t(2) * sp[i]));
    });
  });
  return out;
}

// g swish''(x); beyond second order its derivative is written with differentiable operators.
struct SwishSecond : torch::autograd::Function<SwishSecond> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& x, const at::Tensor& s) {
    ctx->save_for_backward({g, x});
    return derivative(g, x, s, Order::kSecond);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = saved[0], &x = saved[1];
    const at::Tensor s = at::sigmoid(x), slope = s * (1 - s), u = 1 - 2 * s;
    const at::Tensor second = slope * (2 + x * u);
    const at::Tensor third = slope * (u * (3 + x * u) - 2 * x * slope);
    return {grad[0] * second, grad[0] * g * third, at::Tensor()};
  }
};

// g swish'(x)
struct SwishFirst : torch::autograd::Function<SwishFirst> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& x, const at::Tensor& s) {
    ctx->save_for_backward({g, x, s});
    return derivative(g, x, s, Order::kFirst);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {SwishFirst::apply(grad[0], saved[1], saved[2]), SwishSecond::apply(grad[0] * saved[0], saved[1], saved[2]),
            at::Tensor()};
  }
};

struct Swish : torch::autograd::Function<Swish> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    const at::Tensor s = at::sigmoid(x);
    ctx->save_for_backward({x, s});
    return x * s;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {SwishFirst::apply(grad[0], saved[0], saved[1])};
  }
};

}  // namespace

at::Tensor swish(const at::Tensor& x) { return cpu_kernels_for(x) ? Swish::apply(x) : x * at::sigmoid(x); }

}  // namespace atomforge::model
