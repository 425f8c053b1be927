#include "model/segment_contraction.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/block_gemm.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows per parallel task: enough work to outweigh the scheduling.
constexpr int64_t kGrain = 16;

// The loops below are compiled for several vector widths (core/vector_clones.hpp); each works on
// rows begin .. end - 1 of its output.

// T[i] = sum_r env[r]^T g[r]
template <typename T>
ATOMFORGE_VECTOR_CLONES void contract_rows(const T* e, const T* g, const int64_t* start, T* out, int64_t begin,
                                           int64_t end, int64_t width, int64_t m) {
  for (int64_t i = begin; i < end; ++i)
    for (int64_t r = start[i]; r < start[i + 1]; ++r) {
      const T* gr = g + r * m;
      for (int64_t c = 0; c < width; ++c) {
        const T ec = e[r * width + c];
        T* oc = out + (i * width + c) * m;
        for (int64_t k = 0; k < m; ++k) oc[k] += ec * gr[k];
      }
    }
}

// E[r, c] = t[centre[r], c] . g[r]
template <typename T>
ATOMFORGE_VECTOR_CLONES void row_dot_rows(const T* t, const T* g, const int64_t* centre, T* out, int64_t begin,
                                          int64_t end, int64_t width, int64_t m) {
  for (int64_t r = begin; r < end; ++r)
    for (int64_t c = 0; c < width; ++c) out[r * width + c] = dot_in_lanes(t + (centre[r] * width + c) * m, g + r * m, m);
}

// G[r] = env[r] . t[centre[r]]
template <typename T>
ATOMFORGE_VECTOR_CLONES void row_expand_rows(const T* e, const T* t, const int64_t* centre, T* out, int64_t begin,
                                             int64_t end, int64_t width, int64_t m) {
  for (int64_t r = begin; r < end; ++r) {
    T* orow = out + r * m;
    for (int64_t k = 0; k < m; ++k) orow[k] = 0;
    for (int64_t c = 0; c < width; ++c) {
      const T ec = e[r * width + c];
      const T* tc = t + (centre[r] * width + c) * m;
      for (int64_t k = 0; k < m; ++k) orow[k] += ec * tc[k];
    }
  }
}

at::Tensor contract_kernel(const at::Tensor& env_in, const at::Tensor& g_in, const Segments& s) {
  const at::Tensor env = env_in.contiguous(), g = g_in.contiguous();
  const int64_t width = env.size(1), m = g.size(1);
  at::Tensor out = at::zeros({s.centres(), width, m}, env.options());
  const int64_t* start = s.start.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "contract_segments", [&] {
    at::parallel_for(0, s.centres(), kGrain, [&](int64_t begin, int64_t end) {
      contract_rows(env.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), start, out.data_ptr<scalar_t>(), begin, end,
                    width, m);
    });
  });
  return out;
}

at::Tensor row_dot_kernel(const at::Tensor& t_in, const at::Tensor& g_in, const Segments& s) {
  const at::Tensor t = t_in.contiguous(), g = g_in.contiguous();
  const int64_t width = t.size(1), m = t.size(2), rows = s.rows();
  at::Tensor out = at::empty({rows, width}, t.options());
  const int64_t* centre = s.centre.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "segment_row_dot", [&] {
    at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
      row_dot_rows(t.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), centre, out.data_ptr<scalar_t>(), begin, end,
                   width, m);
    });
  });
  return out;
}

at::Tensor row_expand_kernel(const at::Tensor& env_in, const at::Tensor& t_in, const Segments& s) {
  const at::Tensor env = env_in.contiguous(), t = t_in.contiguous();
  const int64_t width = t.size(1), m = t.size(2), rows = s.rows();
  at::Tensor out = at::empty({rows, m}, t.options());
  const int64_t* centre = s.centre.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "segment_row_expand", [&] {
    at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
      row_expand_rows(env.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(), centre, out.data_ptr<scalar_t>(), begin, end,
                      width, m);
    });
  });
  return out;
}

void save_segments(AutogradContext* ctx, const Segments& s) {
  ctx->saved_data["start"] = s.start;
  ctx->saved_data["centre"] = s.centre;
}

Segments saved_segments(AutogradContext* ctx) {
  return {ctx->saved_data["start"].toTensor(), ctx->saved_data["centre"].toTensor()};
}

// The three functions below are each other's derivatives. Each pass is a sweep over (neighbours x
// width) rows in memory: a gradient nobody asked for (the environment's, when training asks for
// the parameters' only) is not computed.
struct Contract : torch::autograd::Function<Contract> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& env, const at::Tensor& g, const Segments& s);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct RowDot : torch::autograd::Function<RowDot> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& t, const at::Tensor& g, const Segments& s);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct RowExpand : torch::autograd::Function<RowExpand> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& env, const at::Tensor& t, const Segments& s);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

at::Tensor Contract::forward(AutogradContext* ctx, const at::Tensor& env, const at::Tensor& g, const Segments& s) {
  ctx->save_for_backward({env, g});
  save_segments(ctx, s);
  return contract_kernel(env, g, s);
}
variable_list Contract::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Segments s = saved_segments(ctx);
  return {ctx->needs_input_grad(0) ? RowDot::apply(grad[0], saved[1], s) : at::Tensor(),
          ctx->needs_input_grad(1) ? RowExpand::apply(saved[0], grad[0], s) : at::Tensor(), at::Tensor()};
}

at::Tensor RowDot::forward(AutogradContext* ctx, const at::Tensor& t, const at::Tensor& g, const Segments& s) {
  ctx->save_for_backward({t, g});
  save_segments(ctx, s);
  return row_dot_kernel(t, g, s);
}
variable_list RowDot::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Segments s = saved_segments(ctx);
  return {ctx->needs_input_grad(0) ? Contract::apply(grad[0], saved[1], s) : at::Tensor(),
          ctx->needs_input_grad(1) ? RowExpand::apply(grad[0], saved[0], s) : at::Tensor(), at::Tensor()};
}

at::Tensor RowExpand::forward(AutogradContext* ctx, const at::Tensor& env, const at::Tensor& t, const Segments& s) {
  ctx->save_for_backward({env, t});
  save_segments(ctx, s);
  return row_expand_kernel(env, t, s);
}
variable_list RowExpand::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Segments s = saved_segments(ctx);
  return {ctx->needs_input_grad(0) ? RowDot::apply(saved[1], grad[0], s) : at::Tensor(),
          ctx->needs_input_grad(1) ? Contract::apply(saved[0], grad[0], s) : at::Tensor(), at::Tensor()};
}

// out[p] = a[p] . b[p] for p in begin .. end - 1: a strided, b's rows contiguous, out contiguous.
template <typename T>
ATOMFORGE_VECTOR_CLONES void small_bmm_rows(const T* ap, const T* bp, T* o, int64_t begin, int64_t end, int64_t n,
                                            int64_t k, int64_t m, const int64_t* as, const int64_t* bs) {
  for (int64_t p = begin; p < end; ++p)
    for (int64_t i = 0; i < n; ++i) {
      T* orow = o + (p * n + i) * m;
      for (int64_t q = 0; q < k; ++q) {
        const T aiq = ap[p * as[0] + i * as[1] + q * as[2]];
        const T* brow = bp + p * bs[0] + q * bs[1];
        for (int64_t j = 0; j < m; ++j) orow[j] += aiq * brow[j];
      }
    }
}

std::optional<GemmOperand> layout_of(const at::Tensor& t) {
  return gemm_operand(t.size(1), t.size(2), t.stride(1), t.stride(2));
}

// With generated kernels (LIBXSMM) one small product per batch entry costs little more than its
// multiply-adds; the loop above is for builds without them, where a BLAS call per entry would
// cost more than the work.
at::Tensor small_bmm_generated(const at::Tensor& a_in, const at::Tensor& b_in) {
  const at::Tensor a = layout_of(a_in) ? a_in : a_in.contiguous();
  // LIBXSMM generates kernels for a transposed left operand only: a transposed right one is copied.
  const at::Tensor b = layout_of(b_in) && !layout_of(b_in)->transposed ? b_in : b_in.contiguous();
  const GemmOperand la = *layout_of(a), lb = *layout_of(b);
  const int64_t batch = a.size(0), n = a.size(1), k = a.size(2), m = b.size(2);
  at::Tensor out = at::empty({batch, n, m}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "small_bmm", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, batch, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        block_gemm<scalar_t>(la.transposed, false, n, m, k, ap + p * a.stride(0), la.ld, bp + p * b.stride(0), lb.ld,
                             scalar_t(0), op + p * n * m, m);
    });
  });
  return out;
}

at::Tensor small_bmm_kernel(const at::Tensor& a, const at::Tensor& b_in) {
  if (a.numel() == 0 || b_in.numel() == 0) return at::zeros({a.size(0), a.size(1), b_in.size(2)}, a.options());
  if (block_gemm_backend() == GemmBackend::kLibxsmm) return small_bmm_generated(a, b_in);
  // The inner loop runs along b's rows: a strided b (a transposed operand in the derivatives) is
  // copied first, which is cheaper than a loop that cannot use vector loads.
  const at::Tensor b = b_in.stride(2) == 1 ? b_in : b_in.contiguous();
  const int64_t batch = a.size(0), n = a.size(1), k = a.size(2), m = b.size(2);
  at::Tensor out = at::zeros({batch, n, m}, a.options());
  const int64_t as[3] = {a.stride(0), a.stride(1), a.stride(2)};
  const int64_t bs[2] = {b.stride(0), b.stride(1)};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "small_bmm", [&] {
    at::parallel_for(0, batch, kGrain, [&](int64_t begin, int64_t end) {
      small_bmm_rows(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end, n, k, m,
                     as, bs);
    });
  });
  return out;
}

struct SmallBmm : torch::autograd::Function<SmallBmm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return small_bmm_kernel(a, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {ctx->needs_input_grad(0) ? SmallBmm::apply(grad[0], saved[1].transpose(1, 2)) : at::Tensor(),
            ctx->needs_input_grad(1) ? SmallBmm::apply(saved[0].transpose(1, 2), grad[0]) : at::Tensor()};
  }
};

}  // namespace

at::Tensor contract_segments(const at::Tensor& env, const at::Tensor& g, const Segments& segments) {
  return Contract::apply(env, g, segments);
}

at::Tensor small_bmm(const at::Tensor& a, const at::Tensor& b) { return SmallBmm::apply(a, b); }

}  // namespace atomforge::model
