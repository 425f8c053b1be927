#include "model/switched_environment.hpp"

#include <cmath>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/cpu_kernels.hpp"

namespace atomforge::model {

at::Tensor environment_rows_reference(const at::Tensor& rij, const SwitchedEnvironment& env) {
  const at::Tensor r2 = (rij * rij).sum(-1, true);
  const at::Tensor r = at::sqrt(r2);
  const at::Tensor u = at::clamp((r - env.rcut_smth) / (env.rcut - env.rcut_smth), 0.0, 1.0);
  const at::Tensor u3 = u * u * u;
  const at::Tensor w = u3 * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0;
  const at::Tensor s = w / (r + env.protection);
  return at::cat({s, s * rij / r}, -1);  // (ne, 4)
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor reference_normalised(const at::Tensor& edge_vec, const at::Tensor& edges, const at::Tensor& stat_row,
                                const at::Tensor& avg, const at::Tensor& std, const SwitchedEnvironment& env) {
  return (environment_rows_reference(edge_vec.index_select(0, edges), env) - avg.index_select(0, stat_row)) /
         std.index_select(0, stat_row);
}

// s(r) = w(u(r)) / (r + protection) and q(r) = s / r with their first and second derivatives,
// for a number (the loops) or a column of them (the operator form of the third derivatives).
template <typename V>
struct Radial {
  V r, s, ds, d2s, q, dq, d2q;
};
template <typename V>
V clamp01(const V& u) {
  return u < V(0) ? V(0) : (u > V(1) ? V(1) : u);
}
template <>
at::Tensor clamp01(const at::Tensor& u) {
  return at::clamp(u, 0.0, 1.0);
}
template <typename V>
Radial<V> radial(const V& r, const SwitchedEnvironment& env) {
  const double inv_width = 1.0 / (env.rcut - env.rcut_smth);
  const V u = clamp01<V>((r - env.rcut_smth) * inv_width);
  // w = -6u^5 + 15u^4 - 10u^3 + 1; dw/du = -30 u^2 (u - 1)^2 and d2w/du2 = -60 u (2u - 1)(u - 1)
  // vanish at both ends, so the clamp needs no case of its own.
  const V w = u * u * u * (u * (-6.0 * u + 15.0) - 10.0) + 1.0;
  const V dw = (-30.0 * inv_width) * u * u * (u - 1.0) * (u - 1.0);
  const V d2w = (-60.0 * inv_width * inv_width) * u * (2.0 * u - 1.0) * (u - 1.0);
  // Two divisions per edge, the rest products: s = w/d, s' = (w' - s)/d, s'' = (w'' - 2 s')/d with
  // d = r + protection, and the same recurrence for q = s/r.
  const V inv_d = 1.0 / (r + env.protection), inv_r = 1.0 / r;
  Radial<V> o;
  o.r = r;
  o.s = w * inv_d;
  o.ds = (dw - o.s) * inv_d;
  o.d2s = (d2w - 2.0 * o.ds) * inv_d;
  o.q = o.s * inv_r;
  o.dq = (o.ds - o.q) * inv_r;
  o.d2q = (o.d2s - 2.0 * o.dq) * inv_r;
  return o;
}

struct Rows {
  at::Tensor edges, stat_row, avg, std;
  SwitchedEnvironment env;
};

template <typename F>
void for_rows(int64_t n, const F& fn) {
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) fn(k);
  });
}

// env[k] = (f(x) - avg) / std, f = (s, q x).
at::Tensor forward_kernel(const at::Tensor& xs_in, const Rows& rows) {
  const at::Tensor xs = xs_in.contiguous();
  const int64_t n = rows.edges.size(0);
  at::Tensor out = at::empty({n, 4}, xs.options());
  AT_DISPATCH_FLOATING_TYPES(xs.scalar_type(), "normalised_environment", [&] {
    const scalar_t *x = xs.data_ptr<scalar_t>(), *avg = rows.avg.data_ptr<scalar_t>(), *sd = rows.std.data_ptr<scalar_t>();
    const int64_t *edge = rows.edges.data_ptr<int64_t>(), *stat = rows.stat_row.data_ptr<int64_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for_rows(n, [&](int64_t k) {
      const scalar_t* xe = x + 3 * edge[k];
      const auto rad = radial<scalar_t>(std::sqrt(xe[0] * xe[0] + xe[1] * xe[1] + xe[2] * xe[2]), rows.env);
      const scalar_t* a = avg + 4 * stat[k];
      const scalar_t* d = sd + 4 * stat[k];
      o[4 * k] = (rad.s - a[0]) / d[0];
      for (int i = 0; i < 3; ++i) o[4 * k + 1 + i] = (rad.q * xe[i] - a[1 + i]) / d[1 + i];
    });
  });
  return out;
}

// Adds per-row vectors (n, 3) onto their edges' rows of a zero (ne, 3) tensor: one thread, as
// two rows may share an edge (they do not in se_e2_a, but nothing here needs it).
at::Tensor add_onto_edges(const at::Tensor& per_row, const at::Tensor& like, const Rows& rows) {
  at::Tensor out = at::zeros_like(like);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "add_onto_edges", [&] {
    const scalar_t* p = per_row.data_ptr<scalar_t>();
    const int64_t* edge = rows.edges.data_ptr<int64_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t k = 0; k < per_row.size(0); ++k)
      for (int i = 0; i < 3; ++i) o[3 * edge[k] + i] += p[3 * k + i];
  });
  return out;
}

// The force pass: g (ne, 3), g[edge[k]] += J_k^T (v[k] / std): alpha x + q a with a = v / std,
// alpha = (a0 s' + q' (a . x)) / r.
at::Tensor backward_kernel(const at::Tensor& xs_in, const at::Tensor& v_in, const Rows& rows) {
  const at::Tensor xs = xs_in.contiguous(), v = v_in.contiguous();
  const int64_t n = rows.edges.size(0);
  at::Tensor per_row = at::empty({n, 3}, xs.options());
  AT_DISPATCH_FLOATING_TYPES(xs.scalar_type(), "normalised_environment_backward", [&] {
    const scalar_t *x = xs.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>(), *sd = rows.std.data_ptr<scalar_t>();
    const int64_t *edge = rows.edges.data_ptr<int64_t>(), *stat = rows.stat_row.data_ptr<int64_t>();
    scalar_t* o = per_row.data_ptr<scalar_t>();
    for_rows(n, [&](int64_t k) {
      const scalar_t* xe = x + 3 * edge[k];
      const auto rad = radial<scalar_t>(std::sqrt(xe[0] * xe[0] + xe[1] * xe[1] + xe[2] * xe[2]), rows.env);
      const scalar_t* d = sd + 4 * stat[k];
      const scalar_t a0 = vp[4 * k] / d[0];
      const scalar_t a[3] = {vp[4 * k + 1] / d[1], vp[4 * k + 2] / d[2], vp[4 * k + 3] / d[3]};
      const scalar_t ax = a[0] * xe[0] + a[1] * xe[1] + a[2] * xe[2];
      const scalar_t alpha = (a0 * rad.ds + rad.dq * ax) / rad.r;
      for (int i = 0; i < 3; ++i) o[3 * k + i] = alpha * xe[i] + rad.q * a[i];
    });
  });
  return add_onto_edges(per_row, xs, rows);
}

// The training backward through the force pass, for the upstream w (ne, 3) of its output:
// to v, (J_k w[edge[k]]) / std; to x, the derivative of w . (alpha x + q a) along x.
std::pair<at::Tensor, at::Tensor> second_kernel(const at::Tensor& xs_in, const at::Tensor& v_in,
                                                const at::Tensor& w_in, const Rows& rows, bool want_x, bool want_v) {
  const at::Tensor xs = xs_in.contiguous(), v = v_in.contiguous(), w = w_in.contiguous();
  const int64_t n = rows.edges.size(0);
  at::Tensor gx_rows = want_x ? at::empty({n, 3}, xs.options()) : at::Tensor();
  at::Tensor gv = want_v ? at::empty({n, 4}, xs.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(xs.scalar_type(), "normalised_environment_second", [&] {
    const scalar_t *x = xs.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>(),
                   *sd = rows.std.data_ptr<scalar_t>();
    const int64_t *edge = rows.edges.data_ptr<int64_t>(), *stat = rows.stat_row.data_ptr<int64_t>();
    scalar_t* ox = want_x ? gx_rows.data_ptr<scalar_t>() : nullptr;
    scalar_t* ov = want_v ? gv.data_ptr<scalar_t>() : nullptr;
    for_rows(n, [&](int64_t k) {
      const scalar_t* xe = x + 3 * edge[k];
      const scalar_t* we = wp + 3 * edge[k];
      const auto rad = radial<scalar_t>(std::sqrt(xe[0] * xe[0] + xe[1] * xe[1] + xe[2] * xe[2]), rows.env);
      const scalar_t* d = sd + 4 * stat[k];
      const scalar_t r = rad.r;
      const scalar_t xw = xe[0] * we[0] + xe[1] * we[1] + xe[2] * we[2];
      if (want_v) {
        ov[4 * k] = rad.ds * xw / r / d[0];
        for (int i = 0; i < 3; ++i) ov[4 * k + 1 + i] = (rad.dq * xw * xe[i] / r + rad.q * we[i]) / d[1 + i];
      }
      if (want_x) {
        const scalar_t a0 = vp[4 * k] / d[0];
        const scalar_t a[3] = {vp[4 * k + 1] / d[1], vp[4 * k + 2] / d[2], vp[4 * k + 3] / d[3]};
        const scalar_t ax = a[0] * xe[0] + a[1] * xe[1] + a[2] * xe[2];
        const scalar_t aw = a[0] * we[0] + a[1] * we[1] + a[2] * we[2];
        // alpha = A + B (a . x), A = a0 s' / r, B = q' / r, and their derivatives along r.
        const scalar_t alpha = (a0 * rad.ds + rad.dq * ax) / r;
        const scalar_t dA = a0 * (rad.d2s / r - rad.ds / (r * r));
        const scalar_t dB = rad.d2q / r - rad.dq / (r * r);
        const scalar_t along_x = (dA + dB * ax) * xw / r + rad.dq * aw / r;
        const scalar_t B = rad.dq / r;
        for (int j = 0; j < 3; ++j) ox[3 * k + j] = xe[j] * along_x + alpha * we[j] + B * xw * a[j];
      }
    });
  });
  return {want_x ? add_onto_edges(gx_rows, xs, rows) : at::Tensor(), gv};
}

// second_kernel's formulas written with libtorch operators on (x, v, w), so that libtorch
// differentiates them further (the derivatives of order three and up).
std::pair<at::Tensor, at::Tensor> second_formula(const at::Tensor& xs, const at::Tensor& v, const at::Tensor& ws,
                                                 const Rows& rows) {
  const at::Tensor x = xs.index_select(0, rows.edges), w = ws.index_select(0, rows.edges);
  const at::Tensor sd = rows.std.index_select(0, rows.stat_row);
  const auto [r, s, ds, d2s, q, dq, d2q] = radial<at::Tensor>(at::sqrt((x * x).sum(1, true)), rows.env);
  const at::Tensor xw = (x * w).sum(1, true);
  const at::Tensor gv = at::cat({ds * xw / r, dq * xw * x / r + q * w}, 1) / sd;
  const at::Tensor a = v / sd, a0 = a.narrow(1, 0, 1), av = a.narrow(1, 1, 3);
  const at::Tensor ax = (av * x).sum(1, true), aw = (av * w).sum(1, true);
  const at::Tensor alpha = (a0 * ds + dq * ax) / r;
  const at::Tensor along_x = (a0 * (d2s / r - ds / (r * r)) + (d2q / r - dq / (r * r)) * ax) * xw / r + dq * aw / r;
  const at::Tensor rows_x = x * along_x + alpha * w + (dq / r) * xw * av;
  return {at::zeros_like(xs).index_add(0, rows.edges, rows_x), gv};
}

void save_rows(AutogradContext* ctx, const Rows& rows) {
  ctx->saved_data["edges"] = rows.edges;
  ctx->saved_data["stat_row"] = rows.stat_row;
  ctx->saved_data["avg"] = rows.avg;
  ctx->saved_data["std"] = rows.std;
  ctx->saved_data["rcut"] = rows.env.rcut;
  ctx->saved_data["rcut_smth"] = rows.env.rcut_smth;
  ctx->saved_data["protection"] = rows.env.protection;
}
Rows saved_rows(AutogradContext* ctx) {
  return {ctx->saved_data["edges"].toTensor(),
          ctx->saved_data["stat_row"].toTensor(),
          ctx->saved_data["avg"].toTensor(),
          ctx->saved_data["std"].toTensor(),
          {ctx->saved_data["rcut"].toDouble(), ctx->saved_data["rcut_smth"].toDouble(),
           ctx->saved_data["protection"].toDouble()}};
}

struct EnvironmentFn : torch::autograd::Function<EnvironmentFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& xs, const Rows& rows);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
// The force pass g = J^T v as a function of (x, v), itself differentiable.
struct EnvironmentBackwardFn : torch::autograd::Function<EnvironmentBackwardFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& xs, const at::Tensor& v, const Rows& rows);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

at::Tensor EnvironmentFn::forward(AutogradContext* ctx, const at::Tensor& xs, const Rows& rows) {
  ctx->save_for_backward({xs});
  save_rows(ctx, rows);
  return forward_kernel(xs, rows);
}
variable_list EnvironmentFn::backward(AutogradContext* ctx, variable_list grad) {
  return {EnvironmentBackwardFn::apply(ctx->get_saved_variables()[0], grad[0], saved_rows(ctx)), at::Tensor()};
}

at::Tensor EnvironmentBackwardFn::forward(AutogradContext* ctx, const at::Tensor& xs, const at::Tensor& v,
                                          const Rows& rows) {
  ctx->save_for_backward({xs, v});
  save_rows(ctx, rows);
  return backward_kernel(xs, v, rows);
}
variable_list EnvironmentBackwardFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const Rows rows = saved_rows(ctx);
  const bool want_x = ctx->needs_input_grad(0), want_v = ctx->needs_input_grad(1);
  if (at::GradMode::is_enabled()) {  // third derivatives: the same formulas in libtorch's operators
    auto [gx, gv] = second_formula(saved[0], saved[1], grad[0], rows);
    return {want_x ? gx : at::Tensor(), want_v ? gv : at::Tensor(), at::Tensor()};
  }
  auto [gx, gv] = second_kernel(saved[0], saved[1], grad[0], rows, want_x, want_v);
  return {gx, gv, at::Tensor()};
}

}  // namespace

at::Tensor normalised_environment(const at::Tensor& edge_vec, const at::Tensor& edges, const at::Tensor& stat_row,
                                  const at::Tensor& avg, const at::Tensor& std, const SwitchedEnvironment& env) {
  const bool fused = cpu_kernels_for(edge_vec) && edge_vec.dim() == 2 && edge_vec.size(1) == 3 &&
                     (edge_vec.scalar_type() == at::kDouble || edge_vec.scalar_type() == at::kFloat) &&
                     avg.scalar_type() == edge_vec.scalar_type() && std.scalar_type() == edge_vec.scalar_type();
  if (!fused) return reference_normalised(edge_vec, edges, stat_row, avg, std, env);
  const Rows rows{edges.to(at::kLong).contiguous(), stat_row.to(at::kLong).contiguous(), avg.detach().contiguous(),
                  std.detach().contiguous(), env};
  return EnvironmentFn::apply(edge_vec, rows);
}

}  // namespace atomforge::model
