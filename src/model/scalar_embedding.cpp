#include "model/scalar_embedding.hpp"

#include <functional>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/blas_threads.hpp"
#include "model/block_gemm.hpp"
#include "model/cpu_kernels.hpp"
#include "model/fast_tanh.hpp"
#include "model/parallel_parts.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Neighbours per block: a layer's values and slopes for a block, (2 x 128 x 100) doubles, stay
// in the core's L2 cache between the matrix product and the element-wise work around it.
constexpr int64_t kBlock = 128;

enum class Residual { kNone, kSame, kDouble };

struct Layer {
  int64_t in, out;
  bool idt;
  Residual residual;
};

// The residual repeats a layer's input across its output (kSame once, kDouble twice): output
// column h * span + j, h < copies, adds input column j.
template <Residual R>
constexpr int64_t residual_copies = R == Residual::kDouble ? 2 : 1;

// Calls f with the layer's residual as a compile-time constant.
template <typename F>
void with_residual(const Layer& layer, F&& f) {
  switch (layer.residual) {
    case Residual::kNone: f(std::integral_constant<Residual, Residual::kNone>()); break;
    case Residual::kSame: f(std::integral_constant<Residual, Residual::kSame>()); break;
    case Residual::kDouble: f(std::integral_constant<Residual, Residual::kDouble>()); break;
  }
}

// widths: n_0 (= 1) .. n_L; idt: per layer, 1 when it has a resnet_dt timestep.
std::vector<Layer> layout_of(const std::vector<int64_t>& widths, const std::vector<int64_t>& idt) {
  std::vector<Layer> layers;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const int64_t in = widths[l], out = widths[l + 1];
    const Residual residual = out == in ? Residual::kSame : out == 2 * in ? Residual::kDouble : Residual::kNone;
    layers.push_back({in, out, idt[l] != 0, residual});
  }
  return layers;
}

// The parameters of layer l in the flat list W0, b0, [idt0], W1, ...
struct LayerParams {
  at::Tensor matrix, bias, idt;
};
std::vector<LayerParams> split_params(const std::vector<Layer>& layers, at::TensorList params) {
  std::vector<LayerParams> out;
  std::size_t k = 0;
  for (const Layer& layer : layers) {
    LayerParams p;
    p.matrix = params[k++];
    p.bias = params[k++];
    if (layer.idt) p.idt = params[k++];
    out.push_back(p);
  }
  return out;
}

// The value h and slope t of a layer's output from its input's: z = h W + b, u = t W,
// a = tanh(z), h' = a idt + residual(h), t' = (1 - a^2) u idt + residual(t).
std::pair<at::Tensor, at::Tensor> reference_layers(const std::vector<Layer>& layers, at::TensorList params,
                                                   const at::Tensor& x) {
  const auto p = split_params(layers, params);
  at::Tensor h = x, t = at::ones_like(x);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const at::Tensor a = at::tanh(at::addmm(p[l].bias, h, p[l].matrix));
    at::Tensor y = a, ty = (1 - a * a) * at::mm(t, p[l].matrix);
    if (layers[l].idt) {
      y = y * p[l].idt;
      ty = ty * p[l].idt;
    }
    if (layers[l].residual == Residual::kSame) {
      y = y + h;
      ty = ty + t;
    } else if (layers[l].residual == Residual::kDouble) {
      y = y + at::cat({h, h}, 1);
      ty = ty + at::cat({t, t}, 1);
    }
    h = y;
    t = ty;
  }
  return {h, t};
}

// Blocks: rows r0 .. r0 + c - 1 of the n neighbours. Per layer the input X (2c, in) holds a
// block's h rows, then its t rows, and Y (2c, out) tanh(z) rows, then u = t W rows. X is one
// worker's scratch for one block at a time: the training backward forms it again from Y, in the
// cache, which costs less than storing it and reading it back (it is as large as Y). Y is
// scratch too, or, when whole, every block's at row 2 r0, kept for the training backward.
// With derive_last, the last layer's Y is not kept: the backward reads the net's values and
// slopes (kept by the caller anyway) less its input's residual: a = value - residual(h) and,
// instead of u, (1 - a^2) u = slope - residual(t), all it needs of u. That saves writing and
// keeping a (2n, out) array per evaluation; a layer with a timestep keeps its Y.
struct Activations {
  std::vector<at::Tensor> x, y;  // per layer (y: without the last layer's in a kept set)
  bool whole = false;            // y
  bool derive_last = false;      // y.back() is the forward's scratch; the backward reads values and slopes
  at::Tensor values, slopes;     // the net's outputs, with derive_last
  bool y_is_scratch(std::size_t l) const { return !whole || (derive_last && l + 1 == y.size()); }
  template <typename T>
  T* y_rows(std::size_t l, int64_t r0, int64_t width) const {
    return y[l].data_ptr<T>() + (y_is_scratch(l) ? 0 : 2 * r0 * width);
  }
};

// Y for `whole_rows` (whole, no X: each worker adds its own, with_own_inputs), or one block's X
// and Y (0).
Activations make_activations(const std::vector<Layer>& layers, const at::TensorOptions& options, int64_t whole_rows,
                             bool derive_last = false) {
  Activations a;
  a.whole = whole_rows > 0;
  a.derive_last = a.whole && derive_last;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    if (!a.whole) a.x.push_back(at::empty({2 * kBlock, layers[l].in}, options));
    if (a.derive_last && l + 1 == layers.size()) break;
    a.y.push_back(at::empty({2 * (a.whole ? whole_rows : kBlock), layers[l].out}, options));
  }
  return a;
}

// A worker's scratch X (and last Y, with derive_last) around the Y kept whole.
Activations with_own_inputs(const std::vector<Layer>& layers, const at::TensorOptions& options,
                            const Activations& whole) {
  Activations a = whole;
  for (const Layer& layer : layers) a.x.push_back(at::empty({2 * kBlock, layer.in}, options));
  if (a.derive_last) a.y.push_back(at::empty({2 * kBlock, layers.back().out}, options));
  return a;
}

// Kept activations of the last layer may be derived when it has no timestep (a would be value
// over idt).
bool last_derivable(const std::vector<Layer>& layers) { return !layers.back().idt; }

// With kActivate (the forward), rows 0..c-1 of y hold z - b and become a = tanh(z) here;
// without (the backward's recomputation), they hold a already. Rows c..2c-1 hold u = t W. One
// pass per row.
template <typename T, Residual R, bool kActivate, bool kIdt>
ATOMFORGE_VECTOR_CLONES void activate_rows(int64_t c, const Layer& layer, T* __restrict y, const T* __restrict bias,
                                           const T* __restrict idt, const T* __restrict xin, T* __restrict out_h,
                                           T* __restrict out_t) {
  const int64_t in = layer.in, out = layer.out, copies = residual_copies<R>, span = out / copies;
  for (int64_t i = 0; i < c; ++i) {
    T* a = y + i * out;
    const T* u = y + (c + i) * out;
    T* oh = out_h + i * out;
    T* ot = out_t + i * out;
    const T* xh = xin + i * in;
    const T* xt = xin + (c + i) * in;
    for (int64_t j = 0; j < span; ++j)
      for (int64_t h = 0; h < copies; ++h) {
        const int64_t k = h * span + j;
        T ak = a[k];
        if constexpr (kActivate) {
          ak = tanh_value(ak + bias[k]);
          a[k] = ak;
        }
        const T scale = kIdt ? idt[k] : T(1);
        T value = ak * scale, slope = (T(1) - ak * ak) * u[k] * scale;
        if constexpr (R != Residual::kNone) {
          value += xh[j];
          slope += xt[j];
        }
        oh[k] = value;
        ot[k] = slope;
      }
  }
}

// X of layer 0: the block's inputs, then ones (the slope of x along itself).
template <typename T>
void load_inputs(const Activations& saved, const at::Tensor& x, int64_t r0, int64_t c) {
  T* xin = saved.x[0].data_ptr<T>();
  const T* src = x.data_ptr<T>();
  for (int64_t i = 0; i < c; ++i) {
    xin[i] = src[(r0 + i) * x.stride(0)];
    xin[c + i] = T(1);
  }
}

// Layer l's output values and slopes from its Y (activated here when `bias`) and X.
template <typename T>
void activate(const Layer& layer, const LayerParams& p, T* y, const T* bias, const T* xin, T* out_h, T* out_t,
              int64_t c) {
  const T* idt = layer.idt ? p.idt.data_ptr<T>() : nullptr;
  const bool activating = bias != nullptr;
  auto rows = [&](auto residual) {
    constexpr Residual R = decltype(residual)::value;
    if (activating && idt != nullptr) activate_rows<T, R, true, true>(c, layer, y, bias, idt, xin, out_h, out_t);
    else if (activating) activate_rows<T, R, true, false>(c, layer, y, bias, idt, xin, out_h, out_t);
    else if (idt != nullptr) activate_rows<T, R, false, true>(c, layer, y, bias, idt, xin, out_h, out_t);
    else activate_rows<T, R, false, false>(c, layer, y, bias, idt, xin, out_h, out_t);
  };
  with_residual(layer, rows);
}

template <typename T>
void forward_block(const std::vector<Layer>& layers, const std::vector<LayerParams>& p, const Activations& saved,
                   const at::Tensor& x, at::Tensor& g, at::Tensor& slope, int64_t r0, int64_t c) {
  load_inputs<T>(saved, x, r0, c);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const Layer& layer = layers[l];
    const T* xin = saved.x[l].data_ptr<T>();
    T* y = saved.y_rows<T>(l, r0, layer.out);
    block_gemm<T>(false, false, 2 * c, layer.out, layer.in, xin, layer.in, p[l].matrix.data_ptr<T>(), layer.out, 0, y,
                  layer.out);
    const bool last = l + 1 == layers.size();
    T* out_h = last ? g.data_ptr<T>() + r0 * layer.out : saved.x[l + 1].data_ptr<T>();
    T* out_t = last ? slope.data_ptr<T>() + r0 * layer.out : out_h + c * layer.out;
    activate<T>(layer, p[l], y, p[l].bias.data_ptr<T>(), xin, out_h, out_t, c);
  }
}

// X of every layer of a block again, from its kept Y.
template <typename T>
void recompute_inputs(const std::vector<Layer>& layers, const std::vector<LayerParams>& p, const Activations& saved,
                      const at::Tensor& x, int64_t r0, int64_t c) {
  load_inputs<T>(saved, x, r0, c);
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    T* out_h = saved.x[l + 1].data_ptr<T>();
    activate<T>(layers[l], p[l], saved.y_rows<T>(l, r0, layers[l].out), nullptr, saved.x[l].data_ptr<T>(), out_h,
                out_h + c * layers[l].out, c);
  }
}

// Values and slopes of every block into g and slope (n, out); returns the activations, whole
// when keep_whole. The blocks go in `parts` even parts, one per task; consume, when given, sees
// each block's values right after they are computed (see run_scalar_embedding).
template <typename T>
Activations run_forward_parts(const std::vector<Layer>& layers, const std::vector<LayerParams>& p, const at::Tensor& x,
                              at::Tensor& g, at::Tensor& slope, bool keep_whole, bool derive_last, int64_t parts,
                              const ConsumeValues<T>* consume) {
  const int64_t n = x.size(0), blocks = (n + kBlock - 1) / kBlock;
  Activations whole =
      keep_whole ? make_activations(layers, x.options(), n, derive_last && last_derivable(layers)) : Activations{};
  if (whole.derive_last) {
    whole.values = g;
    whole.slopes = slope;
  }
  const int64_t width = layers.back().out;
  for_each_part(blocks, parts, [&](int64_t part, int64_t begin, int64_t end) {
    one_blas_thread_in_this_worker();
    const at::NoGradGuard no_grad;  // grad mode is per thread: off in the caller only
    const Activations saved =
        keep_whole ? with_own_inputs(layers, x.options(), whole) : make_activations(layers, x.options(), 0);
    for (int64_t b = begin; b < end; ++b) {
      const int64_t r0 = b * kBlock, c = std::min(kBlock, n - r0);
      forward_block<T>(layers, p, saved, x, g, slope, r0, c);
      if (consume != nullptr) (*consume)(part, r0, c, g.data_ptr<T>() + r0 * width);
    }
  });
  return whole;
}

int64_t forward_parts(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (n + kBlock - 1) / kBlock));
}

Activations run_forward(const std::vector<Layer>& layers, const std::vector<LayerParams>& p, const at::Tensor& x,
                        at::Tensor& g, at::Tensor& slope, bool keep_whole) {
  Activations out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scalar_embedding_forward", [&] {
    out = run_forward_parts<scalar_t>(layers, p, x, g, slope, keep_whole, false, forward_parts(x.size(0)), nullptr);
  });
  return out;
}

// Gradients of one worker's blocks, summed in the worker's own buffers.
struct Accumulators {
  std::vector<at::Tensor> matrix, bias, idt;  // per layer
};

// Column j of row i's value and slope gradients reaching a layer's input through its residual
// (the sum over the output columns that repeat input column j), into gx (2c, span).
template <typename T, Residual R>
inline void residual_gradient(const T* gh, const T* gt, T* gx, int64_t i, int64_t c, int64_t j, int64_t span) {
  if constexpr (R != Residual::kNone) {
    gx[i * span + j] = R == Residual::kDouble ? gh[j] + gh[span + j] : gh[j];
    gx[(c + i) * span + j] = R == Residual::kDouble ? gt[j] + gt[span + j] : gt[j];
  }
}

// Given gh and gt (c rows each), the gradients of a layer's output value and slope, writes gz =
// dL/dz and gu = dL/du into gzu (same layout), sums the bias and idt gradients, and, with a
// residual, writes into gx (2c, in; value rows, then slope rows) the gradient reaching the
// input through it. No two buffers overlap: declared so, the loop vectorises (GCC gives up on
// versioning this many pointers).
template <typename T, Residual R>
ATOMFORGE_VECTOR_CLONES void layer_gradients(int64_t c, const Layer& layer, const T* __restrict y,
                                             const T* __restrict idt, const T* __restrict gh_rows,
                                             const T* __restrict gt_rows, T* __restrict gzu, T* __restrict gbias,
                                             T* __restrict gidt, T* __restrict gx) {
  const int64_t out = layer.out, copies = residual_copies<R>, span = out / copies;
  for (int64_t i = 0; i < c; ++i) {
    const T* a = y + i * out;
    const T* u = y + (c + i) * out;
    const T* gh = gh_rows + i * out;
    const T* gt = gt_rows + i * out;
    T* gz = gzu + i * out;
    T* gu = gzu + (c + i) * out;
    for (int64_t j = 0; j < span; ++j) {
      for (int64_t h = 0; h < copies; ++h) {
        const int64_t k = h * span + j;
        const T d = T(1) - a[k] * a[k];
        T ga = gh[k], gta = gt[k];
        if (idt != nullptr) {
          gidt[k] += ga * a[k] + gta * d * u[k];
          ga *= idt[k];
          gta *= idt[k];
        }
        gu[k] = gta * d;
        gz[k] = (ga - T(2) * a[k] * u[k] * gta) * d;
        gbias[k] += gz[k];
      }
      residual_gradient<T, R>(gh, gt, gx, i, c, j, span);
    }
  }
}

// layer_gradients for a last layer without timestep (derive_last), straight from the block's
// rows of the net's values and slopes and its input X (2c, in): a = value - residual(h) and
// (1 - a^2) u = slope - residual(t), all it needs of u (d(1 - a^2) u / dz = -2 a (1 - a^2) u).
template <typename T, Residual R>
ATOMFORGE_VECTOR_CLONES void last_layer_gradients(int64_t c, const Layer& layer, const T* __restrict values,
                                                  const T* __restrict slopes, const T* __restrict xin,
                                                  const T* __restrict gh_rows, const T* __restrict gt_rows,
                                                  T* __restrict gzu, T* __restrict gbias, T* __restrict gx) {
  const int64_t in = layer.in, out = layer.out, copies = residual_copies<R>, span = out / copies;
  for (int64_t i = 0; i < c; ++i) {
    const T* xh = xin + i * in;
    const T* xt = xin + (c + i) * in;
    const T* v = values + i * out;
    const T* s = slopes + i * out;
    const T* gh = gh_rows + i * out;
    const T* gt = gt_rows + i * out;
    T* gz = gzu + i * out;
    T* gu = gzu + (c + i) * out;
    for (int64_t j = 0; j < span; ++j) {
      for (int64_t h = 0; h < copies; ++h) {
        const int64_t k = h * span + j;
        const T a = R != Residual::kNone ? v[k] - xh[j] : v[k];
        const T du = R != Residual::kNone ? s[k] - xt[j] : s[k];
        const T d = T(1) - a * a;
        gu[k] = gt[k] * d;
        gz[k] = gh[k] * d - T(2) * a * du * gt[k];
        gbias[k] += gz[k];
      }
      residual_gradient<T, R>(gh, gt, gx, i, c, j, span);
    }
  }
}

// Scratch of one worker: gradients of a layer's value and slope rows (two, used in turn), of
// its pre-activations, the net's output gradients of a block as they come in, and zeros standing
// for a gradient that did not come.
template <typename T>
struct Scratch {
  std::vector<T> g[2], gzu, in_values, in_slopes, zeros;
  explicit Scratch(int64_t widest) {
    for (auto* v : {&g[0], &g[1], &gzu}) v->resize(static_cast<std::size_t>(2 * kBlock * widest));
    for (auto* v : {&in_values, &in_slopes}) v->resize(static_cast<std::size_t>(kBlock * widest));
    zeros.assign(static_cast<std::size_t>(kBlock * widest), T(0));
  }
};

// gh and gt: the block's gradients of the net's output values and slopes, c rows each.
template <typename T>
void backward_block(const std::vector<Layer>& layers, const std::vector<LayerParams>& p, const Activations& saved,
                    const std::vector<at::Tensor>& transposed, const T* gh, const T* gt, at::Tensor* grad_x,
                    bool want_params, Accumulators& acc, Scratch<T>& scratch, int64_t r0, int64_t c) {
  int next = 0;
  for (int64_t l = static_cast<int64_t>(layers.size()) - 1; l >= 0; --l) {
    const Layer& layer = layers[l];
    const T* xin = saved.x[l].data_ptr<T>();
    T* gzu = scratch.gzu.data();
    T* gx = scratch.g[next].data();  // the input's gradient: through the residual, then + GZU W^T
    with_residual(layer, [&](auto residual) {
      constexpr Residual R = decltype(residual)::value;
      if (saved.derive_last && l + 1 == static_cast<int64_t>(layers.size())) {
        last_layer_gradients<T, R>(c, layer, saved.values.data_ptr<T>() + r0 * layer.out,
                                   saved.slopes.data_ptr<T>() + r0 * layer.out, xin, gh, gt, gzu,
                                   acc.bias[l].data_ptr<T>(), gx);
      } else {
        layer_gradients<T, R>(c, layer, saved.y_rows<T>(static_cast<std::size_t>(l), r0, layer.out),
                              layer.idt ? p[l].idt.data_ptr<T>() : nullptr, gh, gt, gzu, acc.bias[l].data_ptr<T>(),
                              layer.idt ? acc.idt[l].data_ptr<T>() : nullptr, gx);
      }
    });
    if (want_params)  // W (in, out) += X^T (in, 2c) GZU (2c, out)
      block_gemm<T>(true, false, layer.in, layer.out, 2 * c, xin, layer.in, gzu, layer.out, 1,
                    acc.matrix[l].data_ptr<T>(), layer.out);
    if (l == 0 && grad_x == nullptr) break;
    // gx (2c, in) += GZU (2c, out) W^T (out, in)
    block_gemm<T>(false, false, 2 * c, layer.in, layer.out, gzu, layer.out, transposed[l].data_ptr<T>(), layer.in,
                  layer.residual != Residual::kNone ? 1 : 0, gx, layer.in);
    if (l == 0) {  // the value column is x; the slope column is the constant 1
      T* out = grad_x->data_ptr<T>() + r0;
      for (int64_t i = 0; i < c; ++i) out[i] = gx[i];
      break;
    }
    gh = gx;
    gt = gx + c * layer.in;
    next = 1 - next;
  }
}

// The gradients of a net's input (when want_x) and parameters (when want_params; flat order
// W0, b0, [idt0], W1, ...) for output gradients that `source(r0, c, scratch)` gives a block at a
// time: pointers to the block's gradients of the values and of the slopes, c rows each. Without
// kept activations (a ForcesOnlyScope evaluation) the net runs again.
struct NetGradients {
  at::Tensor x;
  std::vector<at::Tensor> params;
};

template <typename T>
using BlockSource = std::function<std::pair<const T*, const T*>(int64_t r0, int64_t c, Scratch<T>& scratch)>;

template <typename T>
NetGradients backward_through_net(const std::vector<Layer>& layers, const std::vector<LayerParams>& p,
                                  Activations saved, const at::Tensor& x, bool want_x, bool want_params,
                                  const BlockSource<T>& source) {
  const int64_t n = x.size(0), blocks = (n + kBlock - 1) / kBlock;
  if (!saved.whole) {
    at::Tensor g = at::empty({n, layers.back().out}, x.options()), slope = at::empty_like(g);
    saved = run_forward(layers, p, x, g, slope, true);
  }
  const int64_t slots = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), blocks));
  int64_t widest = 0;
  for (const Layer& layer : layers) widest = std::max({widest, layer.in, layer.out});
  std::vector<Accumulators> acc(static_cast<std::size_t>(slots));
  for (auto& a : acc)
    for (std::size_t l = 0; l < layers.size(); ++l) {
      a.matrix.push_back(at::zeros_like(p[l].matrix));
      a.bias.push_back(at::zeros_like(p[l].bias));
      a.idt.push_back(layers[l].idt ? at::zeros_like(p[l].idt) : at::Tensor());
    }
  NetGradients out;
  if (want_x) out.x = at::empty({n, 1}, x.options());
  // W^T row-major: LIBXSMM 1.17 generates no kernel for a transposed right operand.
  std::vector<at::Tensor> transposed;
  for (const auto& layer : p) transposed.push_back(layer.matrix.t().contiguous());
  for_each_part(blocks, slots, [&](int64_t slot, int64_t first, int64_t end) {
    one_blas_thread_in_this_worker();
    const at::NoGradGuard no_grad;  // grad mode is per thread: off in the caller only
    Scratch<T> scratch(widest);
    const Activations own = with_own_inputs(layers, x.options(), saved);
    for (int64_t blk = first; blk < end; ++blk) {
      const int64_t r0 = blk * kBlock, c = std::min(kBlock, n - r0);
      recompute_inputs<T>(layers, p, own, x, r0, c);
      const auto [gh, gt] = source(r0, c, scratch);
      backward_block<T>(layers, p, own, transposed, gh, gt, want_x ? &out.x : nullptr, want_params,
                        acc[static_cast<std::size_t>(slot)], scratch, r0, c);
    }
  });
  if (!want_params) return out;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    auto total = [&](std::vector<at::Tensor> Accumulators::*field) {
      at::Tensor sum = (acc[0].*field)[l];
      for (std::size_t s = 1; s < acc.size(); ++s) sum = sum + (acc[s].*field)[l];
      return sum;
    };
    for (auto field : {&Accumulators::matrix, &Accumulators::bias, &Accumulators::idt})
      if (field != &Accumulators::idt || layers[l].idt) out.params.push_back(total(field));
  }
  return out;
}

std::vector<at::Tensor> contiguous_all(at::TensorList tensors) {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.contiguous());
  return out;
}

// out[r] = a[r] . b[r] and its derivative (v a, v b) in one pass each, for (n, m) rows: the force
// pass's product of the embedding's gradient with its slope, and the training backward through
// it (libtorch's form, a product, a sum, and two broadcasting products, is four passes).
template <typename T>
ATOMFORGE_VECTOR_CLONES void row_dots(const T* a, const T* b, T* out, int64_t begin, int64_t end, int64_t m) {
  for (int64_t r = begin; r < end; ++r) out[r] = dot_in_lanes(a + r * m, b + r * m, m);
}

template <typename T>
ATOMFORGE_VECTOR_CLONES void scale_rows_pair(const T* v, const T* a, const T* b, T* va, T* vb, int64_t begin,
                                             int64_t end, int64_t m) {
  for (int64_t r = begin; r < end; ++r)
    for (int64_t k = 0; k < m; ++k) {
      va[r * m + k] = v[r] * a[r * m + k];
      vb[r * m + k] = v[r] * b[r * m + k];
    }
}

constexpr int64_t kRowGrain = 256;

struct RowDotFn : torch::autograd::Function<RowDotFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a_in, const at::Tensor& b_in) {
    const at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
    ctx->save_for_backward({a_in, b_in});
    const int64_t n = a.size(0), m = a.size(1);
    at::Tensor out = at::empty({n, 1}, a.options());
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "row_dot", [&] {
      at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
        row_dots(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), begin, end, m);
      });
    });
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) return {grad[0] * saved[1], grad[0] * saved[0]};  // higher derivatives
    const at::Tensor v = grad[0].contiguous(), a = saved[0].contiguous(), b = saved[1].contiguous();
    const int64_t n = a.size(0), m = a.size(1);
    at::Tensor va = at::empty_like(a), vb = at::empty_like(b);
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "row_dot_backward", [&] {
      at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
        scale_rows_pair(v.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(),
                        va.data_ptr<scalar_t>(), vb.data_ptr<scalar_t>(), begin, end, m);
      });
    });
    return {va, vb};
  }
};

at::Tensor row_dot(const at::Tensor& a, const at::Tensor& b) { return RowDotFn::apply(a, b); }

// Outputs: the values G and the slope dG/dx.
struct ScalarEmbeddingFn : torch::autograd::Function<ScalarEmbeddingFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                               const std::vector<int64_t>& widths, const std::vector<int64_t>& idt) {
    ctx->set_materialize_grads(false);
    const auto layers = layout_of(widths, idt);
    const auto p = split_params(layers, contiguous_all(params));
    at::Tensor g = at::empty({x.size(0), widths.back()}, x.options()), slope = at::empty_like(g);
    const Activations saved = run_forward(layers, p, x, g, slope, !ForcesOnlyScope::raised());
    std::vector<at::Tensor> to_save = {x};
    to_save.insert(to_save.end(), params.begin(), params.end());
    // The slope output: the force pass's product with it stays on the graph (training on forces).
    to_save.push_back(slope);
    ctx->save_for_backward(to_save);
    ctx->saved_data["widths"] = widths;
    ctx->saved_data["idt"] = idt;
    if (saved.whole) save_kept(ctx, saved.y);
    return {g, slope};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved_vars = ctx->get_saved_variables();
    const at::Tensor& x = saved_vars.front();
    const at::Tensor& slope = saved_vars.back();
    const std::vector<at::Tensor> params(saved_vars.begin() + 1, saved_vars.end() - 1);
    const auto widths = ctx->saved_data["widths"].toIntVector();
    const auto idt = ctx->saved_data["idt"].toIntVector();
    const auto layers = layout_of(widths, idt);
    const at::Tensor& grad_g = grad[0];
    const at::Tensor& grad_slope = grad[1];
    std::vector<bool> wanted(1 + params.size());
    bool want_params = false;
    for (std::size_t k = 0; k < wanted.size(); ++k) {
      wanted[k] = ctx->needs_input_grad(k);
      if (k > 0) want_params = want_params || wanted[k];
    }
    variable_list out(1 + params.size() + 2);
    if (!grad_g.defined() && !grad_slope.defined()) return out;

    if (!grad_slope.defined() && !want_params) {  // the force pass: dG/dx is the slope
      if (wanted[0]) out[0] = row_dot(grad_g, slope);
      return out;
    }

    if (at::GradMode::is_enabled()) {  // higher derivatives: through libtorch's operators
      std::vector<at::Tensor> inputs;
      for (std::size_t k = 0; k < wanted.size(); ++k)
        if (wanted[k]) inputs.push_back(k == 0 ? x : params[k - 1]);
      const auto [g_ref, slope_ref] = reference_layers(layers, params, x);
      const auto grads = torch::autograd::grad(
          {g_ref, slope_ref}, inputs,
          {grad_g.defined() ? grad_g : at::zeros_like(g_ref), grad_slope.defined() ? grad_slope : at::zeros_like(slope_ref)},
          /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
      std::size_t next = 0;
      for (std::size_t k = 0; k < wanted.size(); ++k)
        if (wanted[k]) out[k] = grads[next++];
      return out;
    }

    const auto p = split_params(layers, contiguous_all(params));
    Activations saved;
    saved.y = saved_kept(ctx);
    saved.whole = !saved.y.empty();
    const at::Tensor gg = grad_g.defined() ? grad_g.contiguous() : grad_g;
    const at::Tensor gs = grad_slope.defined() ? grad_slope.contiguous() : grad_slope;
    const int64_t last = widths.back();
    NetGradients grads;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scalar_embedding_backward", [&] {
      using T = scalar_t;
      auto rows_of = [&](const at::Tensor& grad, int64_t r0, Scratch<T>& scratch) -> const T* {
        return grad.defined() ? grad.data_ptr<T>() + r0 * last : scratch.zeros.data();  // zeros: none came
      };
      grads = backward_through_net<T>(layers, p, saved, x, wanted[0], want_params,
                                      [&](int64_t r0, int64_t, Scratch<T>& scratch) -> std::pair<const T*, const T*> {
                                        return {rows_of(gg, r0, scratch), rows_of(gs, r0, scratch)};
                                      });
    });
    if (wanted[0]) out[0] = grads.x;
    for (std::size_t k = 1; k < wanted.size(); ++k)
      if (wanted[k]) out[k] = grads.params[k - 1];
    return out;
  }
};

}  // namespace

NetParams net_params(const Mlp& net) {
  NetParams out;
  out.widths.push_back(net.layers().front().matrix.size(0));
  for (const auto& layer : net.layers()) {
    out.params.push_back(layer.matrix);
    out.params.push_back(layer.bias);
    if (layer.idt.defined()) out.params.push_back(layer.idt);
    out.widths.push_back(layer.matrix.size(1));
    out.idt.push_back(layer.idt.defined() ? 1 : 0);
  }
  return out;
}

void save_kept(AutogradContext* ctx, const std::vector<at::Tensor>& kept) {
  for (std::size_t l = 0; l < kept.size(); ++l) ctx->saved_data["kept" + std::to_string(l)] = kept[l];
}

std::vector<at::Tensor> saved_kept(AutogradContext* ctx) {
  std::vector<at::Tensor> kept;
  for (std::size_t l = 0; ctx->saved_data.count("kept" + std::to_string(l)) != 0; ++l)
    kept.push_back(ctx->saved_data["kept" + std::to_string(l)].toTensor());
  return kept;
}

bool scalar_embedding_fusable(const Mlp& net, const at::Tensor& x) {
  if (net.activation_name() != "tanh" || x.dim() != 2 || x.size(1) != 1 || !cpu_kernels_for(x)) return false;
  if (x.scalar_type() != at::kDouble && x.scalar_type() != at::kFloat) return false;
  for (const auto& layer : net.layers())
    if (!layer.activate || layer.matrix.scalar_type() != x.scalar_type()) return false;
  return !net.layers().empty();
}

at::Tensor scalar_embedding(const Mlp& net, const at::Tensor& x) {
  if (!scalar_embedding_fusable(net, x)) return net.forward(x);
  const NetParams p = net_params(net);
  return ScalarEmbeddingFn::apply(x, at::TensorList(p.params), p.widths, p.idt)[0];
}

std::pair<at::Tensor, at::Tensor> scalar_embedding_reference(const Mlp& net, const at::Tensor& x) {
  return scalar_embedding_reference(net_params(net), x);
}

std::pair<at::Tensor, at::Tensor> scalar_embedding_reference(const NetParams& net, const at::Tensor& x) {
  return reference_layers(layout_of(net.widths, net.idt), net.params, x);
}

int64_t scalar_embedding_parts(const at::Tensor& x) { return forward_parts(x.size(0)); }

template <typename T>
EmbeddingRun run_scalar_embedding(const NetParams& net, const at::Tensor& x, const ConsumeValues<T>& consume) {
  const auto layers = layout_of(net.widths, net.idt);
  EmbeddingRun run;
  run.values = at::empty({x.size(0), net.widths.back()}, x.options());
  run.slopes = at::empty_like(run.values);
  run.kept = run_forward_parts<T>(layers, split_params(layers, contiguous_all(net.params)), x, run.values, run.slopes,
                                  !ForcesOnlyScope::raised(), /*derive_last=*/true, scalar_embedding_parts(x), &consume)
                 .y;
  return run;
}

template EmbeddingRun run_scalar_embedding<double>(const NetParams&, const at::Tensor&, const ConsumeValues<double>&);
template EmbeddingRun run_scalar_embedding<float>(const NetParams&, const at::Tensor&, const ConsumeValues<float>&);

template <typename T>
std::vector<at::Tensor> scalar_embedding_parameter_gradients(const NetParams& net, const at::Tensor& x,
                                                             const EmbeddingRun& run,
                                                             const FillOutputGradients<T>& fill) {
  const auto layers = layout_of(net.widths, net.idt);
  Activations saved;
  saved.whole = !run.kept.empty();
  saved.y = run.kept;
  saved.derive_last = saved.whole && run.kept.size() + 1 == layers.size();
  if (saved.derive_last) {
    saved.values = run.values;
    saved.slopes = run.slopes;
  }
  return backward_through_net<T>(layers, split_params(layers, contiguous_all(net.params)), saved, x, false, true,
                                 [&](int64_t r0, int64_t c, Scratch<T>& scratch) -> std::pair<const T*, const T*> {
                                   fill(r0, c, scratch.in_values.data(), scratch.in_slopes.data());
                                   return {scratch.in_values.data(), scratch.in_slopes.data()};
                                 })
      .params;
}

template std::vector<at::Tensor> scalar_embedding_parameter_gradients<double>(const NetParams&, const at::Tensor&,
                                                                              const EmbeddingRun&,
                                                                              const FillOutputGradients<double>&);
template std::vector<at::Tensor> scalar_embedding_parameter_gradients<float>(const NetParams&, const at::Tensor&,
                                                                             const EmbeddingRun&,
                                                                             const FillOutputGradients<float>&);

}  // namespace atomforge::model
