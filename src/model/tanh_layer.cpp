#include "model/tanh_layer.hpp"

#include <algorithm>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/cpu_kernels.hpp"
#include "model/fast_tanh.hpp"
#include "model/parallel_parts.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Elements per parallel task: below this a task's start costs more than its work.
constexpr int64_t kTaskElements = 1 << 13;

int64_t residual_copies(int64_t in, int64_t out) { return out == in ? 1 : out == 2 * in ? 2 : 0; }

// Parts of n rows for the row loops, at least kTaskElements elements each, at most one per thread.
int64_t row_parts(int64_t n, int64_t out) {
  const int64_t grain = std::max<int64_t>(1, kTaskElements / std::max<int64_t>(1, out));
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (n + grain - 1) / grain));
}

// Column sums of per-part rows (slots, out), in part order.
template <typename T>
void sum_parts(const std::vector<T>& parts, int64_t slots, int64_t out, T* total) {
  for (int64_t j = 0; j < out; ++j) total[j] = 0;
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t j = 0; j < out; ++j) total[j] += parts[s * out + j];
}

// a = tanh(p + b); y = a idt + residual(x), rows r0 .. r1 - 1.
template <typename T>
ATOMFORGE_VECTOR_CLONES void forward_rows(const T* __restrict p, const T* __restrict bias, const T* __restrict idt,
                                          const T* __restrict x, T* __restrict a, T* __restrict y, int64_t r0,
                                          int64_t r1, int64_t in, int64_t out) {
  std::copy(p + r0 * out, p + r1 * out, a + r0 * out);
  bias_tanh_rows(a + r0 * out, bias, r1 - r0, out);
  const int64_t copies = residual_copies(in, out);
  for (int64_t r = r0; r < r1; ++r) {
    const T* ar = a + r * out;
    T* yr = y + r * out;
    if (idt != nullptr) {
      for (int64_t j = 0; j < out; ++j) yr[j] = ar[j] * idt[j];
    } else {
      for (int64_t j = 0; j < out; ++j) yr[j] = ar[j];
    }
    for (int64_t c = 0; c < copies; ++c)
      for (int64_t j = 0; j < in; ++j) yr[c * in + j] += x[r * in + j];
  }
}

// The first derivative: gz = gy idt (1 - a^2) (the gradient of p, and summed over rows of b),
// and idt's, the row sum of gy a; rows r0 .. r1 - 1, sums into this part's rows.
template <typename T>
ATOMFORGE_VECTOR_CLONES void first_rows(const T* __restrict gy, const T* __restrict a, const T* __restrict idt,
                                        T* __restrict gz, T* __restrict sum_gz, T* __restrict sum_gya, int64_t r0,
                                        int64_t r1, int64_t out) {
  for (int64_t j = 0; j < out; ++j) sum_gz[j] = sum_gya[j] = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const T* g = gy + r * out;
    const T* ar = a + r * out;
    T* z = gz + r * out;
    for (int64_t j = 0; j < out; ++j) {
      const T scale = idt != nullptr ? idt[j] : T(1);
      z[j] = g[j] * scale * (T(1) - ar[j] * ar[j]);
      sum_gz[j] += z[j];
      sum_gya[j] += g[j] * ar[j];
    }
  }
}

// The derivative of the first one: given the gradients of its outputs (ggz per row, ggb and ggi
// per column; zero rows for those that did not come), with q = ggz + ggb and d = 1 - a^2:
//   gy's   q idt d + ggi a
//   p's    (q idt (-2a) + ggi) gy d   (summed over rows: b's)
//   idt's  sum over rows of q gy d
template <typename T>
ATOMFORGE_VECTOR_CLONES void second_rows(const T* __restrict gy, const T* __restrict a, const T* __restrict idt,
                                         const T* __restrict ggz, int64_t ggz_stride, const T* __restrict ggb,
                                         const T* __restrict ggi, T* __restrict g_gy, T* __restrict g_p,
                                         T* __restrict sum_gp, T* __restrict sum_gidt, int64_t r0, int64_t r1,
                                         int64_t out) {
  for (int64_t j = 0; j < out; ++j) sum_gp[j] = sum_gidt[j] = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const T* g = gy + r * out;
    const T* ar = a + r * out;
    const T* gg = ggz + r * ggz_stride;
    T* o_gy = g_gy + r * out;
    T* o_p = g_p + r * out;
    for (int64_t j = 0; j < out; ++j) {
      const T scale = idt != nullptr ? idt[j] : T(1);
      const T d = T(1) - ar[j] * ar[j];
      const T q = gg[j] + ggb[j];
      o_gy[j] = q * scale * d + ggi[j] * ar[j];
      o_p[j] = (T(-2) * q * scale * ar[j] + ggi[j]) * g[j] * d;
      sum_gp[j] += o_p[j];
      sum_gidt[j] += q * g[j] * d;
    }
  }
}

// Custom functions take no undefined inputs: a layer without idt passes an empty tensor.
bool has_idt(const at::Tensor& idt) { return idt.numel() > 0; }

at::Tensor or_zeros(const at::Tensor& t, const at::Tensor& like) { return t.defined() ? t : at::zeros_like(like); }

// The first derivative's derivative in libtorch operators (third derivatives differentiate it).
variable_list second_reference(const at::Tensor& gy, const at::Tensor& p, const at::Tensor& bias,
                               const at::Tensor& idt, const at::Tensor& ggz, const at::Tensor& ggb,
                               const at::Tensor& ggi) {
  const at::Tensor a = at::tanh(p + bias), d = 1 - a * a;
  const at::Tensor scale = has_idt(idt) ? idt : at::ones_like(bias);
  const at::Tensor q = or_zeros(ggz, p) + or_zeros(ggb, bias);
  const at::Tensor gi = or_zeros(ggi, bias);
  const at::Tensor g_gy = q * scale * d + gi * a;
  const at::Tensor g_p = (-2 * q * scale * a + gi) * gy * d;
  return {g_gy, g_p, g_p.sum(0), has_idt(idt) ? (q * gy * d).sum(0) : at::Tensor()};
}

// (gy, p, bias, idt, a) -> (gz, gz summed over rows, idt's gradient or an empty tensor); a =
// tanh(p + bias) is passed computed, p and bias carry its derivatives.
struct TanhLayerGradFn : torch::autograd::Function<TanhLayerGradFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& gy_in, const at::Tensor& p,
                               const at::Tensor& bias, const at::Tensor& idt, const at::Tensor& a) {
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({gy_in, p, bias, idt});
    ctx->saved_data["a"] = a;
    const at::Tensor gy = gy_in.contiguous();
    const int64_t n = gy.size(0), out = gy.size(1);
    at::Tensor gz = at::empty_like(gy), gbias = at::empty({out}, gy.options()), gidt = at::empty({out}, gy.options());
    AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "tanh_layer_first", [&] {
      using T = scalar_t;
      const int64_t slots = row_parts(n, out);
      std::vector<T> parts_z(slots * out), parts_ya(slots * out);
      const T* idt_p = has_idt(idt) ? idt.data_ptr<T>() : nullptr;
      for_each_part(n, slots, [&](int64_t s, int64_t r0, int64_t r1) {
        first_rows(gy.data_ptr<T>(), a.data_ptr<T>(), idt_p, gz.data_ptr<T>(), &parts_z[s * out], &parts_ya[s * out], r0,
                   r1, out);
      });
      sum_parts(parts_z, slots, out, gbias.data_ptr<T>());
      sum_parts(parts_ya, slots, out, gidt.data_ptr<T>());
    });
    return {gz, gbias, has_idt(idt) ? gidt : at::empty({0}, gy.options())};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gy = saved[0], &p = saved[1], &bias = saved[2], &idt = saved[3];
    const at::Tensor& ggz = grad[0];
    const at::Tensor& ggb = grad[1];
    const at::Tensor ggi = has_idt(idt) ? grad[2] : at::Tensor();
    if (!ggz.defined() && !ggb.defined() && !ggi.defined()) return variable_list(5);
    if (at::GradMode::is_enabled()) {  // third derivatives: through libtorch's operators
      auto r = second_reference(gy, p, bias, idt, ggz, ggb, ggi);
      return {r[0], r[1], r[2], r[3], at::Tensor()};
    }
    const at::Tensor a = ctx->saved_data["a"].toTensor();
    const at::Tensor g = gy.contiguous(), zz = ggz.defined() ? ggz.contiguous() : ggz;
    const int64_t n = g.size(0), out = g.size(1);
    at::Tensor g_gy = at::empty_like(g), g_p = at::empty_like(g);
    at::Tensor g_bias = at::empty({out}, g.options()), g_idt = at::empty({out}, g.options());
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "tanh_layer_second", [&] {
      using T = scalar_t;
      const std::vector<T> zeros(out, T(0));
      const T* zz_p = zz.defined() ? zz.data_ptr<T>() : zeros.data();
      const at::Tensor b = ggb.defined() ? ggb.contiguous() : ggb, i = ggi.defined() ? ggi.contiguous() : ggi;
      const T* ggb_p = b.defined() ? b.data_ptr<T>() : zeros.data();
      const T* ggi_p = i.defined() ? i.data_ptr<T>() : zeros.data();
      const T* idt_p = has_idt(idt) ? idt.data_ptr<T>() : nullptr;
      const int64_t slots = row_parts(n, out);
      std::vector<T> parts_p(slots * out), parts_i(slots * out);
      for_each_part(n, slots, [&](int64_t s, int64_t r0, int64_t r1) {
        second_rows(g.data_ptr<T>(), a.data_ptr<T>(), idt_p, zz_p, zz.defined() ? out : 0, ggb_p, ggi_p,
                    g_gy.data_ptr<T>(), g_p.data_ptr<T>(), &parts_p[s * out], &parts_i[s * out], r0, r1, out);
      });
      sum_parts(parts_p, slots, out, g_bias.data_ptr<T>());
      sum_parts(parts_i, slots, out, g_idt.data_ptr<T>());
    });
    return {g_gy, g_p, g_bias, has_idt(idt) ? g_idt : at::Tensor(), at::Tensor()};
  }
};

struct TanhLayerFn : torch::autograd::Function<TanhLayerFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& p_in, const at::Tensor& bias_in,
                            const at::Tensor& idt_in, const at::Tensor& x_in) {
    const at::Tensor p = p_in.contiguous(), bias = bias_in.contiguous(), x = x_in.contiguous();
    const at::Tensor idt = idt_in.contiguous();
    const int64_t n = p.size(0), out = p.size(1), in = x.size(1);
    at::Tensor a = at::empty_like(p), y = at::empty_like(p);
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "tanh_layer", [&] {
      using T = scalar_t;
      const T* idt_p = has_idt(idt) ? idt.data_ptr<T>() : nullptr;
      for_each_part(n, row_parts(n, out), [&](int64_t, int64_t r0, int64_t r1) {
        forward_rows(p.data_ptr<T>(), bias.data_ptr<T>(), idt_p, x.data_ptr<T>(), a.data_ptr<T>(), y.data_ptr<T>(), r0,
                     r1, in, out);
      });
    });
    ctx->save_for_backward({p_in, bias_in, idt});
    ctx->saved_data["a"] = a;
    ctx->saved_data["in"] = in;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &p = saved[0], &bias = saved[1], &idt = saved[2];
    const at::Tensor a = ctx->saved_data["a"].toTensor();
    const int64_t in = ctx->saved_data["in"].toInt(), out = p.size(1);
    const at::Tensor& gy = grad[0];
    const auto first = TanhLayerGradFn::apply(gy, p, bias, idt, a);
    at::Tensor gx;
    switch (residual_copies(in, out)) {
      case 1: gx = gy; break;
      case 2: gx = gy.view({-1, 2, in}).sum(1); break;
      default: break;
    }
    return {first[0], first[1], has_idt(idt) ? first[2] : at::Tensor(), gx};
  }
};

}  // namespace

bool tanh_layer_fusable(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                        const at::Tensor& input) {
  const auto type = product.scalar_type();
  if (type != at::kDouble && type != at::kFloat) return false;
  for (const at::Tensor* t : {&product, &bias, &idt, &input}) {
    if (!t->defined()) continue;
    if (!cpu_kernels_for(*t) || t->scalar_type() != type) return false;
  }
  return product.dim() == 2 && input.dim() == 2 && bias.dim() == 1;
}

at::Tensor tanh_layer(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                      const at::Tensor& input) {
  if (!tanh_layer_fusable(product, bias, idt, input)) return tanh_layer_reference(product, bias, idt, input);
  return TanhLayerFn::apply(product, bias, idt.defined() ? idt : at::empty({0}, bias.options()), input);
}

at::Tensor tanh_layer_reference(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                                const at::Tensor& input) {
  return timestep_and_residual(at::tanh(product + bias), idt, input);
}

at::Tensor timestep_and_residual(const at::Tensor& activated, const at::Tensor& idt, const at::Tensor& input) {
  const at::Tensor y = idt.defined() ? activated * idt : activated;
  const int64_t in = input.size(1);
  switch (residual_copies(in, y.size(1))) {
    case 1: return y + input;
    case 2: return (y.view({-1, 2, in}) + input.unsqueeze(1)).view(y.sizes());  // without materialising [x, x]
    default: return y;
  }
}

}  // namespace atomforge::model
