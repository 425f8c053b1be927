#include "model/segment_contraction.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/cpu_kernels.hpp"

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

}  // namespace

at::Tensor contract_segments(const at::Tensor& env, const at::Tensor& g, const Segments& segments) {
  if (!cpu_kernels_for(env, g))
    return at::zeros({segments.centres(), env.size(1), g.size(1)}, g.options())
        .index_add(0, segments.centre, env.unsqueeze(2) * g.unsqueeze(1));
  return Contract::apply(env, g, segments);
}

}  // namespace atomforge::model
