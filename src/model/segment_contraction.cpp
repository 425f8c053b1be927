#include "model/segment_contraction.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows per parallel task: enough work to outweigh the scheduling.
constexpr int64_t kGrain = 16;

// T[i] = sum_r env[r]^T g[r]
at::Tensor contract_kernel(const at::Tensor& env_in, const at::Tensor& g_in, const Segments& s) {
  const at::Tensor env = env_in.contiguous(), g = g_in.contiguous();
  const int64_t width = env.size(1), m = g.size(1);
  at::Tensor out = at::zeros({s.centres(), width, m}, env.options());
  const int64_t* start = s.start.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "contract_segments", [&] {
    const scalar_t* e = env.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, s.centres(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        for (int64_t r = start[i]; r < start[i + 1]; ++r) {
          const scalar_t* gr = gp + r * m;
          for (int64_t c = 0; c < width; ++c) {
            const scalar_t ec = e[r * width + c];
            scalar_t* oc = o + (i * width + c) * m;
            for (int64_t k = 0; k < m; ++k) oc[k] += ec * gr[k];
          }
        }
    });
  });
  return out;
}

// E[r, c] = t[centre[r], c] . g[r]
at::Tensor row_dot_kernel(const at::Tensor& t_in, const at::Tensor& g_in, const Segments& s) {
  const at::Tensor t = t_in.contiguous(), g = g_in.contiguous();
  const int64_t width = t.size(1), m = t.size(2), rows = s.rows();
  at::Tensor out = at::empty({rows, width}, t.options());
  const int64_t* centre = s.centre.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "segment_row_dot", [&] {
    const scalar_t* tp = t.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* gr = gp + r * m;
        for (int64_t c = 0; c < width; ++c) {
          const scalar_t* tc = tp + (centre[r] * width + c) * m;
          scalar_t sum = 0;
          for (int64_t k = 0; k < m; ++k) sum += tc[k] * gr[k];
          o[r * width + c] = sum;
        }
      }
    });
  });
  return out;
}

// G[r] = env[r] . t[centre[r]]
at::Tensor row_expand_kernel(const at::Tensor& env_in, const at::Tensor& t_in, const Segments& s) {
  const at::Tensor env = env_in.contiguous(), t = t_in.contiguous();
  const int64_t width = t.size(1), m = t.size(2), rows = s.rows();
  at::Tensor out = at::zeros({rows, m}, t.options());
  const int64_t* centre = s.centre.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "segment_row_expand", [&] {
    const scalar_t* e = env.data_ptr<scalar_t>();
    const scalar_t* tp = t.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* orow = o + r * m;
        for (int64_t c = 0; c < width; ++c) {
          const scalar_t ec = e[r * width + c];
          const scalar_t* tc = tp + (centre[r] * width + c) * m;
          for (int64_t k = 0; k < m; ++k) orow[k] += ec * tc[k];
        }
      }
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

// The three functions below are each other's derivatives.
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
  return {RowDot::apply(grad[0], saved[1], s), RowExpand::apply(saved[0], grad[0], s), at::Tensor()};
}

at::Tensor RowDot::forward(AutogradContext* ctx, const at::Tensor& t, const at::Tensor& g, const Segments& s) {
  ctx->save_for_backward({t, g});
  save_segments(ctx, s);
  return row_dot_kernel(t, g, s);
}
variable_list RowDot::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Segments s = saved_segments(ctx);
  return {Contract::apply(grad[0], saved[1], s), RowExpand::apply(grad[0], saved[0], s), at::Tensor()};
}

at::Tensor RowExpand::forward(AutogradContext* ctx, const at::Tensor& env, const at::Tensor& t, const Segments& s) {
  ctx->save_for_backward({env, t});
  save_segments(ctx, s);
  return row_expand_kernel(env, t, s);
}
variable_list RowExpand::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Segments s = saved_segments(ctx);
  return {RowDot::apply(saved[1], grad[0], s), Contract::apply(saved[0], grad[0], s), at::Tensor()};
}

// out[b] = a[b] . b[b], strided inputs, contiguous output.
at::Tensor small_bmm_kernel(const at::Tensor& a, const at::Tensor& b) {
  const int64_t batch = a.size(0), n = a.size(1), k = a.size(2), m = b.size(2);
  at::Tensor out = at::zeros({batch, n, m}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "small_bmm", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t a0 = a.stride(0), a1 = a.stride(1), a2 = a.stride(2);
    const int64_t b0 = b.stride(0), b1 = b.stride(1), b2 = b.stride(2);
    at::parallel_for(0, batch, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        for (int64_t i = 0; i < n; ++i) {
          scalar_t* orow = o + (p * n + i) * m;
          for (int64_t q = 0; q < k; ++q) {
            const scalar_t aiq = ap[p * a0 + i * a1 + q * a2];
            const scalar_t* brow = bp + p * b0 + q * b1;
            if (b2 == 1)
              for (int64_t j = 0; j < m; ++j) orow[j] += aiq * brow[j];
            else
              for (int64_t j = 0; j < m; ++j) orow[j] += aiq * brow[j * b2];
          }
        }
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
    return {SmallBmm::apply(grad[0], saved[1].transpose(1, 2)), SmallBmm::apply(saved[0].transpose(1, 2), grad[0])};
  }
};

}  // namespace

at::Tensor contract_segments(const at::Tensor& env, const at::Tensor& g, const Segments& segments) {
  return Contract::apply(env, g, segments);
}

at::Tensor small_bmm(const at::Tensor& a, const at::Tensor& b) { return SmallBmm::apply(a, b); }

}  // namespace atomforge::model
