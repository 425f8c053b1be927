#include "model/descriptor_product.hpp"

#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.hpp"
#include "model/block_gemm.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 16;

// Notation, per centre: X, Y, H are (C, m1), G, K are (m1, m2), X< = X[:, :m2], pad(A) widens a
// (C, m2) block to (C, m1) with zeros, Q(X, Y) = X^T Y<.
//   D = s Q(T, T)                  dD/dT . G = R(T, G)
//   R(X, G) = s (X< G^T + pad(X G)) its derivatives: R(H, G) along X, S(H, X) along G
//   S(X, Y) = s (Q(X, Y) + Q(Y, X)) its derivatives: R(Y, K) along X, R(X, K) along Y
struct Sizes {
  int64_t c, m1, m2;
};

// Per centre, products of (C x m1), (m1 x m2) and (C x m2) blocks through block_gemm (generated
// kernels): written as loops, the sums along m2 = 16 or along C = 4 were too short to keep a
// vector unit busy and ran at a few percent of its rate.

// out = s Q(x, y) (+ s Q(y, x) where symmetric), centres begin .. end - 1. The scale goes into a
// copy of the left operand: the output (natoms x 1600) is written once.
template <typename T>
void q_rows(const T* x, const T* y, T* out, int64_t begin, int64_t end, Sizes n, T s, bool symmetric) {
  std::vector<T> scaled(static_cast<std::size_t>(n.c * n.m1));
  for (int64_t i = begin; i < end; ++i) {
    const T* xi = x + i * n.c * n.m1;
    const T* yi = y + i * n.c * n.m1;
    T* o = out + i * n.m1 * n.m2;
    for (int64_t k = 0; k < n.c * n.m1; ++k) scaled[k] = s * xi[k];
    block_gemm<T>(true, false, n.m1, n.m2, n.c, scaled.data(), n.m1, yi, n.m1, T(0), o, n.m2);
    if (!symmetric) continue;
    for (int64_t k = 0; k < n.c * n.m1; ++k) scaled[k] = s * yi[k];
    block_gemm<T>(true, false, n.m1, n.m2, n.c, scaled.data(), n.m1, xi, n.m1, T(1), o, n.m2);
  }
}

// out = R(x, g), centres begin .. end - 1. X< G^T is formed as (G X<^T)^T, so that neither
// product has a transposed right operand (which the generated kernels do not take).
template <typename T>
void r_rows(const T* x, const T* g, T* out, int64_t begin, int64_t end, Sizes n, T s) {
  std::vector<T> xt(static_cast<std::size_t>(n.m2 * n.c)), p(static_cast<std::size_t>(n.m1 * n.c)),
      xg(static_cast<std::size_t>(n.c * n.m2));
  for (int64_t i = begin; i < end; ++i) {
    const T* gi = g + i * n.m1 * n.m2;
    const T* xi = x + i * n.c * n.m1;
    T* o = out + i * n.c * n.m1;
    for (int64_t c = 0; c < n.c; ++c)
      for (int64_t j = 0; j < n.m2; ++j) xt[j * n.c + c] = s * xi[c * n.m1 + j];
    block_gemm<T>(false, false, n.m1, n.c, n.m2, gi, n.m2, xt.data(), n.c, T(0), p.data(), n.c);
    block_gemm<T>(false, false, n.c, n.m2, n.m1, xi, n.m1, gi, n.m2, T(0), xg.data(), n.m2);
    for (int64_t c = 0; c < n.c; ++c) {
      for (int64_t k = 0; k < n.m1; ++k) o[c * n.m1 + k] = p[k * n.c + c];
      for (int64_t j = 0; j < n.m2; ++j) o[c * n.m1 + j] += s * xg[c * n.m2 + j];
    }
  }
}

at::Tensor q_kernel(const at::Tensor& x_in, const at::Tensor& y_in, int64_t m2, double s, bool symmetric) {
  const at::Tensor x = x_in.contiguous(), y = y_in.to(x.scalar_type()).contiguous();
  const Sizes n{x.size(1), x.size(2), m2};
  at::Tensor out = at::empty({x.size(0), n.m1, m2}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "descriptor_product", [&] {
    at::parallel_for(0, x.size(0), kGrain, [&](int64_t begin, int64_t end) {
      q_rows(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end, n,
             static_cast<scalar_t>(s), symmetric);
    });
  });
  return out;
}

at::Tensor r_kernel(const at::Tensor& x_in, const at::Tensor& g_in, double s) {
  const at::Tensor x = x_in.contiguous(), g = g_in.to(x.scalar_type()).contiguous();
  const Sizes n{x.size(1), x.size(2), g.size(2)};
  at::Tensor out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "descriptor_product_backward", [&] {
    at::parallel_for(0, x.size(0), kGrain, [&](int64_t begin, int64_t end) {
      r_rows(x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end, n,
             static_cast<scalar_t>(s));
    });
  });
  return out;
}

struct RFn : torch::autograd::Function<RFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& g, double s) {
    ctx->save_for_backward({x, g});
    ctx->saved_data["s"] = s;
    return r_kernel(x, g, s);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

struct SFn : torch::autograd::Function<SFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, int64_t m2, double s) {
    ctx->save_for_backward({x, y});
    ctx->saved_data["s"] = s;
    return q_kernel(x, y, m2, s, true);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const double s = ctx->saved_data["s"].toDouble();
    return {ctx->needs_input_grad(0) ? RFn::apply(saved[1], grad[0], s) : at::Tensor(),
            ctx->needs_input_grad(1) ? RFn::apply(saved[0], grad[0], s) : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

variable_list RFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const double s = ctx->saved_data["s"].toDouble();
  return {ctx->needs_input_grad(0) ? RFn::apply(grad[0], saved[1], s) : at::Tensor(),
          ctx->needs_input_grad(1) ? SFn::apply(grad[0], saved[0], saved[1].size(2), s) : at::Tensor(), at::Tensor()};
}

struct ProductFn : torch::autograd::Function<ProductFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& t, int64_t m2, double s) {
    ctx->save_for_backward({t});
    ctx->saved_data["s"] = s;
    return q_kernel(t, t, m2, s, false);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {RFn::apply(saved[0], grad[0], ctx->saved_data["s"].toDouble()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor descriptor_product(const at::Tensor& t, int64_t m2, double scale) {
  if (t.dim() != 3 || m2 < 0 || m2 > t.size(2))
    fail("descriptor_product: T must be (centres, C, m1) with m2 <= m1; it has {} dimensions and m2 is {}", t.dim(), m2);
  if (!cpu_kernels_for(t)) return (at::bmm(t.transpose(1, 2), t.narrow(2, 0, m2)) * scale).reshape({t.size(0), t.size(2) * m2});
  return ProductFn::apply(t, m2, scale).view({t.size(0), t.size(2) * m2});
}

}  // namespace atomforge::model
