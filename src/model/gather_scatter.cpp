#include "model/gather_scatter.hpp"

#include <algorithm>
#include <string>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::model {

RowPairs make_row_pairs(const at::Tensor& from, const at::Tensor& to, int64_t from_rows, int64_t to_rows) {
  RowPairs p;
  p.index = {from.contiguous(), to.contiguous()};
  p.rows = {from_rows, to_rows};
  for (int side = 0; side < 2; ++side) {
    p.order[side] = std::get<1>(at::sort(p.index[side], c10::optional<bool>(true), 0));
    p.start[side] = at::zeros({p.rows[side] + 1}, p.index[side].options());
    p.start[side].narrow(0, 1, p.rows[side]).copy_(at::bincount(p.index[side], {}, p.rows[side]).cumsum(0));
  }
  return p;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 32;

// o[c] += a[c] * w[c]. Not inlined: inlined into the loop over pairs, GCC fuses two pairs' rows
// and loads the second's element by element (half the speed of the plain vector loop).
template <typename T>
ATOMFORGE_VECTOR_CLONES __attribute__((noinline)) void multiply_add_row(T* __restrict o, const T* __restrict a,
                                                                        const T* __restrict w, int64_t width) {
  for (int64_t c = 0; c < width; ++c) o[c] += a[c] * w[c];
}

// o[c] = a[c] * w[c].
template <typename T>
ATOMFORGE_VECTOR_CLONES __attribute__((noinline)) void product_row(T* __restrict o, const T* __restrict a,
                                                                   const T* __restrict w, int64_t width) {
  for (int64_t c = 0; c < width; ++c) o[c] = a[c] * w[c];
}

// Rows begin .. end - 1 of out: out[r] += a[gather[t]] * w[t] over the pairs t = order[k],
// start[r] <= k < start[r + 1]; w (pairs, width / groups) multiplies each of a's groups.
template <typename T>
void scatter_rows(const T* a, const T* w, const int64_t* start, const int64_t* order, const int64_t* gather, T* out,
                  int64_t begin, int64_t end, int64_t width, int64_t groups) {
  const int64_t w_width = width / groups;
  for (int64_t r = begin; r < end; ++r)
    for (int64_t k = start[r]; k < start[r + 1]; ++k) {
      const int64_t t = order[k];
      for (int64_t g = 0; g < groups; ++g)
        multiply_add_row(out + r * width + g * w_width, a + gather[t] * width + g * w_width, w + t * w_width, w_width);
    }
}

// out[t] = x[ix[t]] * y[iy[t]] for pairs begin .. end - 1, summed over the rows' groups (out
// has width / groups columns).
template <typename T>
ATOMFORGE_VECTOR_CLONES void pair_product_rows(const T* __restrict x, const T* __restrict y,
                                               const int64_t* __restrict ix, const int64_t* __restrict iy,
                                               T* __restrict out, int64_t begin, int64_t end, int64_t width,
                                               int64_t groups) {
  const int64_t o_width = width / groups;
  for (int64_t t = begin; t < end; ++t) {
    const T* xrow = x + ix[t] * width;
    const T* yrow = y + iy[t] * width;
    T* orow = out + t * o_width;
    for (int64_t c = 0; c < o_width; ++c) orow[c] = xrow[c] * yrow[c];
    for (int64_t g = 1; g < groups; ++g)
      for (int64_t c = 0; c < o_width; ++c) orow[c] += xrow[g * o_width + c] * yrow[g * o_width + c];
  }
}

// out[r] = sum over the pairs t with index(scatter)[t] = r of a[index(1 - scatter)[t]] * w[t],
// w applied to each of a's groups of its width.
at::Tensor scatter_kernel(const at::Tensor& a_in, const at::Tensor& w_in, const RowPairs& p, int scatter) {
  const at::Tensor a = a_in.contiguous(), w = w_in.contiguous();
  const int64_t width = a.size(1), groups = std::max<int64_t>(1, width / std::max<int64_t>(1, w.size(1)));
  at::Tensor out = at::zeros({p.rows[scatter], width}, a.options());
  const int64_t* start = p.start[scatter].data_ptr<int64_t>();
  const int64_t* order = p.order[scatter].data_ptr<int64_t>();
  const int64_t* gather = p.index[1 - scatter].data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gather_multiply_scatter", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.rows[scatter], kGrain, [&](int64_t begin, int64_t end) {
      scatter_rows(ap, wp, start, order, gather, o, begin, end, width, groups);
    });
  });
  return out;
}

// out[t] = x[index(side_x)[t]] * y[index(1 - side_x)[t]], summed over groups of out's width.
at::Tensor pair_product_kernel(const at::Tensor& x_in, const at::Tensor& y_in, const RowPairs& p, int side_x,
                               int64_t groups) {
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t width = x.size(1);
  at::Tensor out = at::empty({p.size(), width / groups}, x.options());
  const int64_t* ix = p.index[side_x].data_ptr<int64_t>();
  const int64_t* iy = p.index[1 - side_x].data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pair_product", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.size(), kGrain, [&](int64_t begin, int64_t end) {
      pair_product_rows(xp, yp, ix, iy, o, begin, end, width, groups);
    });
  });
  return out;
}

// What every function below keeps for its backward: its two operands, the pairs and the side
// its result is indexed by.
struct Saved {
  at::Tensor x, y;
  RowPairs p;
  int64_t side;
};

void save(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, const RowPairs& p, int64_t side) {
  ctx->save_for_backward({x, y});
  for (int k = 0; k < 2; ++k) {
    const std::string n = std::to_string(k);
    ctx->saved_data["index" + n] = p.index[k];
    ctx->saved_data["order" + n] = p.order[k];
    ctx->saved_data["start" + n] = p.start[k];
    ctx->saved_data["rows" + n] = p.rows[k];
  }
  ctx->saved_data["side"] = side;
}

Saved restore(AutogradContext* ctx) {
  const auto operands = ctx->get_saved_variables();
  Saved s{operands[0], operands[1], {}, ctx->saved_data["side"].toInt()};
  for (int k = 0; k < 2; ++k) {
    const std::string n = std::to_string(k);
    s.p.index[k] = ctx->saved_data["index" + n].toTensor();
    s.p.order[k] = ctx->saved_data["order" + n].toTensor();
    s.p.start[k] = ctx->saved_data["start" + n].toTensor();
    s.p.rows[k] = ctx->saved_data["rows" + n].toInt();
  }
  return s;
}

struct Scatter : torch::autograd::Function<Scatter> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& w, const RowPairs& p,
                            int64_t scatter) {
    save(ctx, a, w, p, scatter);
    return scatter_kernel(a, w, p, static_cast<int>(scatter));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct PairProduct : torch::autograd::Function<PairProduct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, const RowPairs& p,
                            int64_t side_x, int64_t groups) {
    save(ctx, x, y, p, side_x);
    return pair_product_kernel(x, y, p, static_cast<int>(side_x), groups);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

variable_list Scatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, scatter] = restore(ctx);
  // d a[g] = sum over the pairs of g of dout[s] * w[t]; d w[t] = dout[s] * a[g] (summed over
  // the groups w multiplies).
  const int64_t groups = std::max<int64_t>(1, x.size(1) / std::max<int64_t>(1, y.size(1)));
  return {Scatter::apply(grad[0], y, p, 1 - scatter), PairProduct::apply(grad[0], x, p, scatter, groups),
          at::Tensor(), at::Tensor()};
}

variable_list PairProduct::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side_x] = restore(ctx);
  // d x[i] = sum over the pairs of i of dout[t] * y[j] (dout on each group), and the same for y.
  return {Scatter::apply(y, grad[0], p, side_x), Scatter::apply(x, grad[0], p, 1 - side_x),
          at::Tensor(), at::Tensor(), at::Tensor()};
}

// A gathered row times a per-pair row, and its adjoint, the per-pair product summed onto the
// rows: each other's derivatives (and their own), to any order. `side` names the gathered rows'
// side of the pairs.

// out[t] = a[index(side)[t]] * w[t].
at::Tensor gather_multiply_kernel(const at::Tensor& a_in, const at::Tensor& w_in, const RowPairs& p, int side) {
  const at::Tensor a = a_in.contiguous(), w = w_in.contiguous();
  const int64_t width = w.size(1);
  at::Tensor out = at::empty({p.size(), width}, w.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "gather_multiply", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const int64_t* index = p.index[side].data_ptr<int64_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.size(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) product_row(o + t * width, ap + index[t] * width, wp + t * width, width);
    });
  });
  return out;
}

// out[r] = sum over the pairs t with index(side)[t] = r of x[t] * w[t].
at::Tensor pair_scatter_kernel(const at::Tensor& x_in, const at::Tensor& w_in, const RowPairs& p, int side) {
  const at::Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const int64_t width = w.size(1);
  at::Tensor out = at::zeros({p.rows[side], width}, w.options());
  if (out.numel() == 0 || p.size() == 0) return out;
  const int64_t* start = p.start[side].data_ptr<int64_t>();
  const int64_t* order = p.order[side].data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "pair_scatter", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.rows[side], kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t k = start[r]; k < start[r + 1]; ++k) {
          const int64_t t = order[k];
          multiply_add_row(o + r * width, xp + t * width, wp + t * width, width);
        }
    });
  });
  return out;
}

// An autograd function of two operands related by the pairs, one side of which is the output's
// (each definition names its operands); its backward is in terms of its family's functions.
#define ATOMFORGE_PAIR_FUNCTION(Name)                                                                 \
  struct Name : torch::autograd::Function<Name> {                                                    \
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& first, const at::Tensor& second, \
                              const RowPairs& p, int64_t side);                                      \
    static variable_list backward(AutogradContext* ctx, variable_list grad);                         \
  }

ATOMFORGE_PAIR_FUNCTION(GatherMultiply);
ATOMFORGE_PAIR_FUNCTION(PairScatter);

at::Tensor GatherMultiply::forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& w, const RowPairs& p,
                                   int64_t side) {
  save(ctx, a, w, p, side);
  return gather_multiply_kernel(a, w, p, static_cast<int>(side));
}
variable_list GatherMultiply::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {PairScatter::apply(grad[0], y, p, side), GatherMultiply::apply(x, grad[0], p, side),
          at::Tensor(), at::Tensor()};
}
at::Tensor PairScatter::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const RowPairs& p,
                                int64_t side) {
  save(ctx, x, w, p, side);
  return pair_scatter_kernel(x, w, p, static_cast<int>(side));
}
variable_list PairScatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {GatherMultiply::apply(grad[0], y, p, side), GatherMultiply::apply(grad[0], x, p, side),
          at::Tensor(), at::Tensor()};
}

// Outer products of per-pair rows scattered onto the `to` side, and the two contractions that
// are their derivatives (each other's and their own, to any order). X (rows, G * C) is read as
// (rows, G, C); m (pairs, C); d (pairs, G).

// Columns handled per pass over a row's pairs in the loops below: their sums stay in vector
// registers across the pairs (every access to them has a constant index once the loops are
// unrolled) and are stored once, where a pass per pair would load and store the output row for
// every pair.
constexpr int64_t kColumnBlock = 16;

// o[c] = sum over the pairs k of row r (start[r] <= k < start[r + 1], t = order[k]) of
// scale(t) * row(t)[c], for c < width <= kColumnBlock.
template <typename T, typename Scale, typename Row>
inline void sum_scaled_rows(T* __restrict o, const int64_t* __restrict start, const int64_t* __restrict order,
                            int64_t r, int64_t width, Scale scale, Row row) {
  if (width == kColumnBlock) {
    T acc[kColumnBlock] = {};
    for (int64_t k = start[r]; k < start[r + 1]; ++k) {
      const int64_t t = order[k];
      const T s = scale(t);
      const T* __restrict x = row(t);
#pragma GCC unroll 16
      for (int64_t c = 0; c < kColumnBlock; ++c) acc[c] += s * x[c];
    }
#pragma GCC unroll 16
    for (int64_t c = 0; c < kColumnBlock; ++c) o[c] = acc[c];
    return;
  }
  for (int64_t c = 0; c < width; ++c) o[c] = 0;
  for (int64_t k = start[r]; k < start[r + 1]; ++k) {
    const int64_t t = order[k];
    const T s = scale(t);
    const T* __restrict x = row(t);
    for (int64_t c = 0; c < width; ++c) o[c] += s * x[c];
  }
}

// Rows begin .. end - 1 of out (rows, G, C): out[r][g][c] = sum over the pairs t of row r of
// m[row][c] * d[t][g], row = m_index[t] (m gathered) or t (m_index null: m has a row per pair).
template <typename T>
ATOMFORGE_VECTOR_CLONES void outer_scatter_rows(const T* __restrict m, const T* __restrict d,
                                                const int64_t* __restrict start, const int64_t* __restrict order,
                                                const int64_t* __restrict m_index, T* __restrict out, int64_t begin,
                                                int64_t end, int64_t groups, int64_t c_width) {
  for (int64_t r = begin; r < end; ++r)
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t c0 = 0; c0 < c_width; c0 += kColumnBlock)
        sum_scaled_rows(
            out + (r * groups + g) * c_width + c0, start, order, r, std::min(kColumnBlock, c_width - c0),
            [&](int64_t t) { return d[t * groups + g]; },
            [&](int64_t t) { return m + (m_index ? m_index[t] : t) * c_width + c0; });
}

at::Tensor outer_scatter_kernel(const at::Tensor& m_in, const at::Tensor& d_in, const RowPairs& p, int side,
                                const int64_t* m_index) {
  const at::Tensor m = m_in.contiguous(), d = d_in.contiguous();
  const int64_t c_width = m.size(1), groups = d.size(1);
  at::Tensor out = at::empty({p.rows[side], groups * c_width}, m.options());
  if (out.numel() == 0 || p.size() == 0) return out.zero_();
  AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "scatter_outer", [&] {
    at::parallel_for(0, p.rows[side], kGrain, [&](int64_t begin, int64_t end) {
      outer_scatter_rows(m.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), p.start[side].data_ptr<int64_t>(),
                         p.order[side].data_ptr<int64_t>(), m_index, out.data_ptr<scalar_t>(), begin, end, groups,
                         c_width);
    });
  });
  return out;
}

// out[t][c] = sum_g x[g][c] d[g] for one pair (x its `to` row).
template <typename T>
ATOMFORGE_VECTOR_CLONES void contract_groups_rows(const T* __restrict x, const T* __restrict d,
                                                  const int64_t* __restrict to, T* __restrict out, int64_t begin,
                                                  int64_t end, int64_t groups, int64_t c_width) {
  for (int64_t t = begin; t < end; ++t) {
    const T* xr = x + to[t] * groups * c_width;
    const T* dt = d + t * groups;
    T* o = out + t * c_width;
    for (int64_t c = 0; c < c_width; ++c) o[c] = xr[c] * dt[0];
    for (int64_t g = 1; g < groups; ++g)
      for (int64_t c = 0; c < c_width; ++c) o[c] += xr[g * c_width + c] * dt[g];
  }
}

// out[t][c] = sum_g X[to[t]][g][c] d[t][g].
at::Tensor contract_groups_kernel(const at::Tensor& x_in, const at::Tensor& d_in, const RowPairs& p) {
  const at::Tensor x = x_in.contiguous(), d = d_in.contiguous();
  const int64_t groups = d.size(1), c_width = x.size(1) / std::max<int64_t>(1, groups);
  at::Tensor out = at::empty({p.size(), c_width}, x.options());
  if (out.numel() == 0 || groups == 0) return out.zero_();  // a sum over no groups
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "contract_groups", [&] {
    at::parallel_for(0, p.size(), kGrain, [&](int64_t begin, int64_t end) {
      contract_groups_rows(x.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), p.index[1].data_ptr<int64_t>(),
                           out.data_ptr<scalar_t>(), begin, end, groups, c_width);
    });
  });
  return out;
}

// out[t][g] = sum_c X[xi[t]][g][c] m[row][c] for pairs begin .. end - 1, row = m_index[t] (m
// gathered) or t.
template <typename T>
ATOMFORGE_VECTOR_CLONES void contract_features_rows(const T* __restrict x, const T* __restrict m,
                                                    const int64_t* __restrict xi, const int64_t* __restrict m_index,
                                                    T* __restrict out, int64_t begin, int64_t end, int64_t groups,
                                                    int64_t c_width) {
  for (int64_t t = begin; t < end; ++t) {
    const T* mrow = m + (m_index ? m_index[t] : t) * c_width;
    for (int64_t g = 0; g < groups; ++g) out[t * groups + g] = dot_in_lanes(x + (xi[t] * groups + g) * c_width, mrow, c_width);
  }
}

at::Tensor contract_features_kernel(const at::Tensor& x_in, const at::Tensor& m_in, const RowPairs& p, int x_side,
                                   const int64_t* m_index) {
  const at::Tensor x = x_in.contiguous(), m = m_in.contiguous();
  const int64_t c_width = m.size(1), groups = x.size(1) / std::max<int64_t>(1, c_width);
  at::Tensor out = at::empty({p.size(), groups}, x.options());
  if (out.numel() == 0 || c_width == 0) return out.zero_();  // a sum over no features
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "contract_features", [&] {
    at::parallel_for(0, p.size(), kGrain, [&](int64_t begin, int64_t end) {
      contract_features_rows(x.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(), p.index[x_side].data_ptr<int64_t>(),
                             m_index, out.data_ptr<scalar_t>(), begin, end, groups, c_width);
    });
  });
  return out;
}

// Rows begin .. end - 1 of out (rows, C): out[r][c] += sum_g a[t][g] Y[gather[t]][g][c] over the
// pairs t of row r. (Sums kept in registers across the pairs, as in outer_scatter_rows, made GCC
// assemble the gathered rows element by element here: three times slower.)
template <typename T>
ATOMFORGE_VECTOR_CLONES void contract_scatter_rows(const T* __restrict y, const T* __restrict a,
                                                   const int64_t* __restrict start, const int64_t* __restrict order,
                                                   const int64_t* __restrict gather, T* __restrict out, int64_t begin,
                                                   int64_t end, int64_t groups, int64_t c_width) {
  for (int64_t r = begin; r < end; ++r) {
    T* o = out + r * c_width;
    for (int64_t k = start[r]; k < start[r + 1]; ++k) {
      const int64_t t = order[k];
      const T* yrow = y + gather[t] * groups * c_width;
      for (int64_t g = 0; g < groups; ++g) {
        const T s = a[t * groups + g];
        for (int64_t c = 0; c < c_width; ++c) o[c] += s * yrow[g * c_width + c];
      }
    }
  }
}

at::Tensor contract_scatter_kernel(const at::Tensor& y_in, const at::Tensor& a_in, const RowPairs& p, int side) {
  const at::Tensor y = y_in.contiguous(), a = a_in.contiguous();
  const int64_t groups = a.size(1), c_width = y.size(1) / std::max<int64_t>(1, groups);
  at::Tensor out = at::zeros({p.rows[side], c_width}, y.options());
  if (out.numel() == 0 || p.size() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "gather_contract_scatter", [&] {
    at::parallel_for(0, p.rows[side], kGrain, [&](int64_t begin, int64_t end) {
      contract_scatter_rows(y.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), p.start[side].data_ptr<int64_t>(),
                            p.order[side].data_ptr<int64_t>(), p.index[1 - side].data_ptr<int64_t>(),
                            out.data_ptr<scalar_t>(), begin, end, groups, c_width);
    });
  });
  return out;
}

struct OuterScatter : torch::autograd::Function<OuterScatter> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& m, const at::Tensor& d, const RowPairs& p);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct ContractGroups : torch::autograd::Function<ContractGroups> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& d, const RowPairs& p);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct ContractFeatures : torch::autograd::Function<ContractFeatures> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& m, const RowPairs& p);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

at::Tensor OuterScatter::forward(AutogradContext* ctx, const at::Tensor& m, const at::Tensor& d, const RowPairs& p) {
  save(ctx, m, d, p, 1);  // the `to` side
  return outer_scatter_kernel(m, d, p, 1, nullptr);
}
variable_list OuterScatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {ContractGroups::apply(grad[0], y, p), ContractFeatures::apply(grad[0], x, p), at::Tensor()};
}
at::Tensor ContractGroups::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& d, const RowPairs& p) {
  save(ctx, x, d, p, 1);  // the `to` side
  return contract_groups_kernel(x, d, p);
}
variable_list ContractGroups::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {OuterScatter::apply(grad[0], y, p), ContractFeatures::apply(x, grad[0], p), at::Tensor()};
}
at::Tensor ContractFeatures::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& m,
                                     const RowPairs& p) {
  save(ctx, x, m, p, 1);  // the `to` side
  return contract_features_kernel(x, m, p, 1, nullptr);
}
variable_list ContractFeatures::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {OuterScatter::apply(y, grad[0], p), ContractGroups::apply(x, grad[0], p), at::Tensor()};
}

// The same products with the per-pair operand's rows gathered from the other side of the pairs:
// a gathered (G, C) row contracted with a per-pair (G) row and summed onto the rows of `side`,
// and its two derivatives, each other's (and their own) to any order.
ATOMFORGE_PAIR_FUNCTION(ContractScatter);
// out[index(side)[t]][g][c] += a[t][g] m[index(1 - side)[t]][c].
ATOMFORGE_PAIR_FUNCTION(GatherOuterScatter);
// out[t][g] = sum_c Y[index(1 - side)[t]][g][c] m[index(side)[t]][c].
ATOMFORGE_PAIR_FUNCTION(GatheredContract);
#undef ATOMFORGE_PAIR_FUNCTION

at::Tensor ContractScatter::forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& a, const RowPairs& p,
                                    int64_t side) {
  save(ctx, y, a, p, side);
  return contract_scatter_kernel(y, a, p, static_cast<int>(side));
}
variable_list ContractScatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {GatherOuterScatter::apply(grad[0], y, p, 1 - side), GatheredContract::apply(x, grad[0], p, side),
          at::Tensor(), at::Tensor()};
}
at::Tensor GatherOuterScatter::forward(AutogradContext* ctx, const at::Tensor& m, const at::Tensor& a,
                                       const RowPairs& p, int64_t side) {
  save(ctx, m, a, p, side);
  return outer_scatter_kernel(m, a, p, static_cast<int>(side), p.index[1 - side].data_ptr<int64_t>());
}
variable_list GatherOuterScatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {ContractScatter::apply(grad[0], y, p, 1 - side),
          GatheredContract::apply(grad[0], x, p, 1 - side), at::Tensor(), at::Tensor()};
}
at::Tensor GatheredContract::forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& m, const RowPairs& p,
                                     int64_t side) {
  save(ctx, y, m, p, side);
  return contract_features_kernel(y, m, p, static_cast<int>(1 - side), p.index[side].data_ptr<int64_t>());
}
variable_list GatheredContract::backward(AutogradContext* ctx, variable_list grad) {
  const auto [x, y, p, side] = restore(ctx);
  return {GatherOuterScatter::apply(y, grad[0], p, 1 - side), ContractScatter::apply(x, grad[0], p, side),
          at::Tensor(), at::Tensor()};
}

struct EdgeEnds {
  at::Tensor centre, neighbour;
  int64_t rows, sign;
};

at::Tensor scatter_ends_kernel(const at::Tensor& v_in, const EdgeEnds& e) {
  const at::Tensor v = v_in.contiguous();
  const int64_t width = v.size(1), edges = v.size(0);
  at::Tensor out = at::zeros({e.rows, width}, v.options());
  const int64_t* ci = e.centre.data_ptr<int64_t>();
  const int64_t* ni = e.neighbour.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "scatter_edge_ends", [&] {
    const scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t sign = static_cast<scalar_t>(e.sign);
    // One thread: rows are shared between edges; the loop moves a few hundred kilobytes. The
    // gather, its adjoint, uses the same ends: they are checked here, where every use starts.
    for (int64_t k = 0; k < edges; ++k) {
      TORCH_CHECK(ci[k] >= 0 && ci[k] < e.rows && ni[k] >= 0 && ni[k] < e.rows, "scatter_edge_ends: edge ", k,
                  " has an end outside the ", e.rows, " rows");
      for (int64_t c = 0; c < width; ++c) {
        o[ci[k] * width + c] += vp[k * width + c];
        o[ni[k] * width + c] += sign * vp[k * width + c];
      }
    }
  });
  return out;
}

at::Tensor gather_ends_kernel(const at::Tensor& w_in, const EdgeEnds& e) {
  const at::Tensor w = w_in.contiguous();
  const int64_t width = w.size(1), edges = e.centre.size(0);
  at::Tensor out = at::empty({edges, width}, w.options());
  const int64_t* ci = e.centre.data_ptr<int64_t>();
  const int64_t* ni = e.neighbour.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "gather_edge_ends", [&] {
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t sign = static_cast<scalar_t>(e.sign);
    at::parallel_for(0, edges, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k)
        for (int64_t c = 0; c < width; ++c) o[k * width + c] = wp[ci[k] * width + c] + sign * wp[ni[k] * width + c];
    });
  });
  return out;
}

void save_ends(AutogradContext* ctx, const EdgeEnds& e) {
  ctx->saved_data["centre"] = e.centre;
  ctx->saved_data["neighbour"] = e.neighbour;
  ctx->saved_data["rows"] = e.rows;
  ctx->saved_data["sign"] = e.sign;
}
EdgeEnds saved_ends(AutogradContext* ctx) {
  return {ctx->saved_data["centre"].toTensor(), ctx->saved_data["neighbour"].toTensor(),
          ctx->saved_data["rows"].toInt(), ctx->saved_data["sign"].toInt()};
}

// Each other's adjoint.
struct ScatterEnds : torch::autograd::Function<ScatterEnds> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& v, const EdgeEnds& e);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct GatherEnds : torch::autograd::Function<GatherEnds> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& w, const EdgeEnds& e);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
at::Tensor ScatterEnds::forward(AutogradContext* ctx, const at::Tensor& v, const EdgeEnds& e) {
  save_ends(ctx, e);
  return scatter_ends_kernel(v, e);
}
variable_list ScatterEnds::backward(AutogradContext* ctx, variable_list grad) {
  return {GatherEnds::apply(grad[0], saved_ends(ctx)), at::Tensor()};
}
at::Tensor GatherEnds::forward(AutogradContext* ctx, const at::Tensor& w, const EdgeEnds& e) {
  save_ends(ctx, e);
  return gather_ends_kernel(w, e);
}
variable_list GatherEnds::backward(AutogradContext* ctx, variable_list grad) {
  return {ScatterEnds::apply(grad[0], saved_ends(ctx)), at::Tensor()};
}

}  // namespace

at::Tensor gather_multiply_scatter(const at::Tensor& a, const at::Tensor& w, const RowPairs& pairs) {
  TORCH_CHECK(a.dim() == 2 && w.dim() == 2 && a.size(0) == pairs.rows[0] && w.size(0) == pairs.size(),
              "gather_multiply_scatter: a needs one row per `from` row and w one per pair");
  TORCH_CHECK(w.size(1) > 0 ? a.size(1) % w.size(1) == 0 : a.size(1) == 0, "gather_multiply_scatter: w's width ",
              w.size(1), " does not divide a's ", a.size(1));
  if (!cpu_kernels_for(a, w)) {
    const int64_t width = w.size(1), groups = width > 0 ? a.size(1) / width : 0;
    const at::Tensor per_pair = a.index_select(0, pairs.index[0]).view({-1, groups, width}) * w.unsqueeze(1);
    return at::zeros({pairs.rows[1], a.size(1)}, a.options()).index_add(0, pairs.index[1], per_pair.view({-1, a.size(1)}));
  }
  return Scatter::apply(a, w, pairs, 1);
}

at::Tensor gather_multiply(const at::Tensor& a, const at::Tensor& w, const RowPairs& pairs) {
  TORCH_CHECK(a.dim() == 2 && w.dim() == 2 && a.size(0) == pairs.rows[0] && w.size(0) == pairs.size() &&
                  a.size(1) == w.size(1),
              "gather_multiply: a needs one row per `from` row and w one per pair, of a's width");
  if (!cpu_kernels_for(a, w)) return a.index_select(0, pairs.index[0]) * w;
  return GatherMultiply::apply(a, w, pairs, 0);
}

at::Tensor scatter_outer(const at::Tensor& m, const at::Tensor& d, const RowPairs& pairs) {
  TORCH_CHECK(m.dim() == 2 && d.dim() == 2 && m.size(0) == pairs.size() && d.size(0) == pairs.size(),
              "scatter_outer: m and d need one row per pair");
  if (!cpu_kernels_for(m, d)) {
    const at::Tensor per_pair = (d.unsqueeze(2) * m.unsqueeze(1)).view({-1, d.size(1) * m.size(1)});
    return at::zeros({pairs.rows[1], per_pair.size(1)}, m.options()).index_add(0, pairs.index[1], per_pair);
  }
  return OuterScatter::apply(m, d, pairs);
}

at::Tensor gather_contract_scatter(const at::Tensor& y, const at::Tensor& a, const RowPairs& pairs) {
  TORCH_CHECK(y.dim() == 2 && a.dim() == 2 && y.size(0) == pairs.rows[0] && a.size(0) == pairs.size(),
              "gather_contract_scatter: y needs one row per `from` row and a one per pair");
  TORCH_CHECK(a.size(1) > 0 ? y.size(1) % a.size(1) == 0 : y.size(1) == 0, "gather_contract_scatter: a's width ",
              a.size(1), " does not divide y's ", y.size(1));
  if (!cpu_kernels_for(y)) {
    const int64_t groups = a.size(1), width = groups > 0 ? y.size(1) / groups : 0;
    const at::Tensor per_pair = (y.index_select(0, pairs.index[0]).view({-1, groups, width}) * a.unsqueeze(2)).sum(1);
    return at::zeros({pairs.rows[1], width}, y.options()).index_add(0, pairs.index[1], per_pair);
  }
  return ContractScatter::apply(y, a, pairs, 1);
}

at::Tensor gather_dot(const at::Tensor& x, const at::Tensor& y, const RowPairs& pairs) {
  TORCH_CHECK(x.dim() == 2 && y.dim() == 2 && x.size(0) == pairs.rows[0] && y.size(0) == pairs.rows[1] &&
                  x.size(1) == y.size(1),
              "gather_dot: x needs one row per `from` row and y one per `to` row, of x's width");
  if (!cpu_kernels_for(x)) return (x.index_select(0, pairs.index[0]) * y.index_select(0, pairs.index[1])).sum(1, true);
  return GatheredContract::apply(x, y, pairs, 1);
}

at::Tensor scatter_edge_ends(const at::Tensor& v, const at::Tensor& centre, const at::Tensor& neighbour, int64_t rows,
                             int64_t sign) {
  TORCH_CHECK(v.dim() == 2 && centre.size(0) == v.size(0) && neighbour.size(0) == v.size(0),
              "scatter_edge_ends: one centre and one neighbour per row of values");
  if (!cpu_kernels_for(v)) {
    const at::Tensor out = at::zeros({rows, v.size(1)}, v.options()).index_add(0, centre, v);
    return out.index_add(0, neighbour, sign == 1 ? v : -v);
  }
  return ScatterEnds::apply(v, EdgeEnds{centre.to(at::kLong).contiguous(), neighbour.to(at::kLong).contiguous(), rows, sign});
}

at::Tensor scatter_edge_virials(const at::Tensor& g, const at::Tensor& r, const at::Tensor& centre,
                                const at::Tensor& neighbour, int64_t rows) {
  TORCH_CHECK(g.dim() == 2 && g.size(1) == 3 && r.sizes() == g.sizes() && centre.size(0) == g.size(0) &&
                  neighbour.size(0) == g.size(0),
              "scatter_edge_virials: one 3-vector of g and of r, one centre and one neighbour per edge");
  if (!cpu_kernels_for(g)) {
    const at::Tensor half = -0.5 * (g.unsqueeze(2) * r.unsqueeze(1)).reshape({-1, 9});
    return at::zeros({rows, 9}, g.options()).index_add(0, centre, half).index_add(0, neighbour, half);
  }
  const at::Tensor gc = g.contiguous(), rc = r.to(g.scalar_type()).contiguous();
  const at::Tensor ci = centre.to(at::kLong).contiguous(), ni = neighbour.to(at::kLong).contiguous();
  at::Tensor out = at::zeros({rows, 9}, gc.options());
  const int64_t* c = ci.data_ptr<int64_t>();
  const int64_t* n = ni.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(gc.scalar_type(), "scatter_edge_virials", [&] {
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* rp = rc.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t e = 0; e < gc.size(0); ++e) {
      TORCH_CHECK(c[e] >= 0 && c[e] < rows && n[e] >= 0 && n[e] < rows, "scatter_edge_virials: edge ", e,
                  " has an end outside the ", rows, " rows");
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          const scalar_t half = scalar_t(-0.5) * (gp[3 * e + a] * rp[3 * e + b]);
          o[9 * c[e] + 3 * a + b] += half;
          o[9 * n[e] + 3 * a + b] += half;
        }
    }
  });
  return out;
}

}  // namespace atomforge::model
