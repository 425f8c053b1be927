#include "model/gather_scatter.hpp"

#include <string>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace atomforge::model {

RowPairs make_row_pairs(const at::Tensor& from, const at::Tensor& to, int64_t from_rows, int64_t to_rows) {
  RowPairs p;
  p.index = {from.contiguous(), to.contiguous()};
  p.rows = {from_rows, to_rows};
  for (int side = 0; side < 2; ++side) {
    p.order[side] = std::get<1>(at::sort(p.index[side], c10::optional<bool>(true), 0));
    p.start[side] = at::zeros({p.rows[side] + 1}, at::kLong);
    p.start[side].narrow(0, 1, p.rows[side]).copy_(at::bincount(p.index[side], {}, p.rows[side]).cumsum(0));
  }
  return p;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 32;

// out[r] = sum over the pairs t with index(scatter)[t] = r of a[index(1 - scatter)[t]] * w[t].
at::Tensor scatter_kernel(const at::Tensor& a_in, const at::Tensor& w_in, const RowPairs& p, int scatter) {
  const at::Tensor a = a_in.contiguous(), w = w_in.contiguous();
  const int64_t width = a.size(1);
  at::Tensor out = at::zeros({p.rows[scatter], width}, a.options());
  const int64_t* start = p.start[scatter].data_ptr<int64_t>();
  const int64_t* order = p.order[scatter].data_ptr<int64_t>();
  const int64_t* gather = p.index[1 - scatter].data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gather_multiply_scatter", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.rows[scatter], kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* orow = o + r * width;
        for (int64_t k = start[r]; k < start[r + 1]; ++k) {
          const int64_t t = order[k];
          const scalar_t* arow = ap + gather[t] * width;
          const scalar_t* wrow = wp + t * width;
          for (int64_t c = 0; c < width; ++c) orow[c] += arow[c] * wrow[c];
        }
      }
    });
  });
  return out;
}

// out[t] = x[index(side_x)[t]] * y[index(1 - side_x)[t]]
at::Tensor pair_product_kernel(const at::Tensor& x_in, const at::Tensor& y_in, const RowPairs& p, int side_x) {
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t width = x.size(1);
  at::Tensor out = at::empty({p.size(), width}, x.options());
  const int64_t* ix = p.index[side_x].data_ptr<int64_t>();
  const int64_t* iy = p.index[1 - side_x].data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pair_product", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.size(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const scalar_t* xrow = xp + ix[t] * width;
        const scalar_t* yrow = yp + iy[t] * width;
        scalar_t* orow = o + t * width;
        for (int64_t c = 0; c < width; ++c) orow[c] = xrow[c] * yrow[c];
      }
    });
  });
  return out;
}

void save_pairs(AutogradContext* ctx, const RowPairs& p, int64_t side) {
  for (int k = 0; k < 2; ++k) {
    const std::string n = std::to_string(k);
    ctx->saved_data["index" + n] = p.index[k];
    ctx->saved_data["order" + n] = p.order[k];
    ctx->saved_data["start" + n] = p.start[k];
    ctx->saved_data["rows" + n] = p.rows[k];
  }
  ctx->saved_data["side"] = side;
}

RowPairs saved_pairs(AutogradContext* ctx) {
  RowPairs p;
  for (int k = 0; k < 2; ++k) {
    const std::string n = std::to_string(k);
    p.index[k] = ctx->saved_data["index" + n].toTensor();
    p.order[k] = ctx->saved_data["order" + n].toTensor();
    p.start[k] = ctx->saved_data["start" + n].toTensor();
    p.rows[k] = ctx->saved_data["rows" + n].toInt();
  }
  return p;
}

struct Scatter : torch::autograd::Function<Scatter> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& w, const RowPairs& p,
                            int64_t scatter) {
    ctx->save_for_backward({a, w});
    save_pairs(ctx, p, scatter);
    return scatter_kernel(a, w, p, static_cast<int>(scatter));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};
struct PairProduct : torch::autograd::Function<PairProduct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, const RowPairs& p,
                            int64_t side_x) {
    ctx->save_for_backward({x, y});
    save_pairs(ctx, p, side_x);
    return pair_product_kernel(x, y, p, static_cast<int>(side_x));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

variable_list Scatter::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const RowPairs p = saved_pairs(ctx);
  const int64_t scatter = ctx->saved_data["side"].toInt();
  // d a[g] = sum over the pairs of g of dout[s] * w[t]; d w[t] = dout[s] * a[g].
  return {Scatter::apply(grad[0], saved[1], p, 1 - scatter), PairProduct::apply(grad[0], saved[0], p, scatter),
          at::Tensor(), at::Tensor()};
}

variable_list PairProduct::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  const RowPairs p = saved_pairs(ctx);
  const int64_t side_x = ctx->saved_data["side"].toInt();
  // d x[i] = sum over the pairs of i of dout[t] * y[j], and the same for y.
  return {Scatter::apply(saved[1], grad[0], p, side_x), Scatter::apply(saved[0], grad[0], p, 1 - side_x),
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
  return Scatter::apply(a, w, pairs, 1);
}

at::Tensor scatter_edge_ends(const at::Tensor& v, const at::Tensor& centre, const at::Tensor& neighbour, int64_t rows,
                             int64_t sign) {
  TORCH_CHECK(v.dim() == 2 && centre.size(0) == v.size(0) && neighbour.size(0) == v.size(0),
              "scatter_edge_ends: one centre and one neighbour per row of values");
  if (!v.device().is_cpu()) {
    const at::Tensor out = at::zeros({rows, v.size(1)}, v.options()).index_add(0, centre, v);
    return out.index_add(0, neighbour, sign == 1 ? v : -v);
  }
  return ScatterEnds::apply(v, EdgeEnds{centre.to(at::kLong).contiguous(), neighbour.to(at::kLong).contiguous(), rows, sign});
}

}  // namespace atomforge::model
