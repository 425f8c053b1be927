#include "model/dense_mm.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/blas_threads.hpp"
#include "model/block_gemm.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool on_fast_path(const at::Tensor& a, const at::Tensor& b) {
  if (block_gemm_backend() == GemmBackend::kLibtorch) return false;
  if (a.dim() != 2 || b.dim() != 2 || !cpu_kernels_for(a, b)) return false;
  if (a.scalar_type() != b.scalar_type()) return false;
  return a.scalar_type() == at::kDouble || a.scalar_type() == at::kFloat;
}

// A matrix as block_gemm takes it (a transposed view of a row-major one, a weight's transpose
// in the derivatives, is used as it is), with a row-major copy kept alive when one was needed.
struct Operand {
  at::Tensor storage;
  GemmOperand layout;
};
Operand operand(const at::Tensor& t) {
  if (const auto layout = gemm_operand(t.size(0), t.size(1), t.stride(0), t.stride(1))) return {t, *layout};
  const at::Tensor copy = t.contiguous();
  return {copy, {false, std::max<int64_t>(1, copy.size(1))}};
}

// Rows of the product per task: enough multiply-adds to outweigh a task's start.
int64_t row_grain(int64_t n, int64_t k) {
  constexpr int64_t kMinTaskWork = 1 << 18;
  return std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(1, n * k));
}

// out = a b, or out += a b when accumulate (out: row-major, a's rows by b's columns). The larger
// side of the product is split over threads: each thread then reads the other operand whole and
// its share of the one split (the force pass's g W^T, 128 x 1600, would have each thread pack
// all of W through the BLAS when split by rows).
void product_into(const at::Tensor& a_in, const at::Tensor& b_in, at::Tensor& out, bool accumulate) {
  const int64_t m = a_in.size(0), k = a_in.size(1), n = b_in.size(1);
  if (m == 0 || n == 0 || k == 0) {
    if (!accumulate) out.zero_();
    return;
  }
  const Operand a = operand(a_in), b = operand(b_in);
  const bool by_columns = n > m;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "dense_mm", [&] {
    const scalar_t* ap = a.storage.data_ptr<scalar_t>();
    const scalar_t* bp = b.storage.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const scalar_t beta = accumulate ? 1 : 0;
    if (by_columns) {
      at::parallel_for(0, n, row_grain(m, k), [&](int64_t begin, int64_t end) {
        one_blas_thread_in_this_worker();
        // Columns begin.. of op(B): columns of B, or rows when B is transposed.
        const scalar_t* columns = bp + (b.layout.transposed ? begin * b.layout.ld : begin);
        block_gemm<scalar_t>(a.layout.transposed, b.layout.transposed, m, end - begin, k, ap, a.layout.ld, columns,
                             b.layout.ld, beta, op + begin, n);
      });
      return;
    }
    at::parallel_for(0, m, row_grain(n, k), [&](int64_t begin, int64_t end) {
      one_blas_thread_in_this_worker();
      // Rows begin.. of op(A): rows of A, or columns when A is transposed.
      const scalar_t* rows = ap + (a.layout.transposed ? begin : begin * a.layout.ld);
      block_gemm<scalar_t>(a.layout.transposed, b.layout.transposed, end - begin, n, k, rows, a.layout.ld, bp,
                           b.layout.ld, beta, op + begin * n, n);
    });
  });
}

at::Tensor product_kernel(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::empty({a.size(0), b.size(1)}, a.options());
  product_into(a, b, out, false);
  return out;
}

// b^T row-major, copied right after the forward product has read b: the force pass's g b^T then
// runs on it as it is, where block_gemm would copy b's transpose itself from memory that has gone
// cold by then (1.2 against 0.4 ns per element for a fitting net's first layer).
at::Tensor transposed_copy(const at::Tensor& b_in) {
  const at::Tensor b = b_in.contiguous();
  const int64_t rows = b.size(0), cols = b.size(1);
  at::Tensor out = at::empty({cols, rows}, b.options());
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "transposed_copy", [&] {
    const scalar_t* src = b.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 1 + 16384 / std::max<int64_t>(1, cols), [&](int64_t begin, int64_t end) {
      transpose_into(src + begin * cols, cols, end - begin, cols, dst + begin, rows);
    });
  });
  return out;
}

struct DenseMM : torch::autograd::Function<DenseMM> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return product_kernel(a, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& g = grad[0];
    at::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = DenseMM::apply(g, saved[1].t());
    if (ctx->needs_input_grad(1)) {
      // In b's own layout: b is a weight's transpose in the derivatives, and a gradient laid out
      // otherwise is copied once more when it reaches the weight.
      const at::Tensor& b = saved[1];
      const auto layout = gemm_operand(b.size(0), b.size(1), b.stride(0), b.stride(1));
      gb = layout && layout->transposed ? DenseMM::apply(g.t(), saved[0]).t() : DenseMM::apply(saved[0].t(), g);
    }
    return {ga, gb};
  }
};

// g b^T: a force pass's product through a weight b of WeightMM. Routed, the gradient reaching b
// goes on to WeightMM's token as this product's output gradient, so that WeightMM's own backward
// forms b's two gradients in one buffer (the autograd engine would add them out of place, a pass
// over b of its own). Not routed (a second force pass on one evaluation) or in grad mode, b's
// gradient is its own.
struct WeightGradMM : torch::autograd::Function<WeightGradMM> {
  // b_t: b^T row-major (see transposed_copy), or undefined.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& b,
                            const at::Tensor& /*token*/, bool routed, const at::Tensor& b_t) {
    ctx->save_for_backward({g, b});
    ctx->saved_data["routed"] = routed;
    return product_kernel(g, b_t.defined() ? b_t : b.t());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gy = grad[0], &g = saved[0], &b = saved[1];
    variable_list out(5);
    if (ctx->needs_input_grad(0)) out[0] = DenseMM::apply(gy, b);
    if (!at::GradMode::is_enabled() && ctx->saved_data["routed"].toBool()) {
      out[2] = gy;
      return out;
    }
    if (ctx->needs_input_grad(1)) out[1] = DenseMM::apply(gy.t(), g);
    return out;
  }
};

// a b for a weight b, with a token output (as large as a, no memory of its own: the expansion of
// one zero) through which the first force pass's product returns the gradient reaching b.
struct WeightMM : torch::autograd::Function<WeightMM> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b, TransposeCache* cache) {
    ctx->set_materialize_grads(false);
    const at::Tensor token = at::zeros({1, 1}, a.options()).expand({a.size(0), a.size(1)});
    ctx->save_for_backward({a, b, token});  // the token: an output, saved without a cycle
    at::Tensor product = product_kernel(a, b);
    if (a.requires_grad())  // for a force pass
      ctx->saved_data["b_t"] = cache != nullptr ? cache->transposed(b) : transposed_copy(b.detach());
    return {product, token};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = grad[0], &routed = grad[1], &a = saved[0], &b = saved[1], &token = saved[2];
    const at::Tensor b_t = ctx->saved_data.count("b_t") != 0 ? ctx->saved_data["b_t"].toTensor() : at::Tensor();
    variable_list out(3);
    if (at::GradMode::is_enabled()) {  // a force pass that training differentiates again
      TORCH_INTERNAL_ASSERT(!routed.defined(), "dense_mm: routed gradient in grad mode");
      if (!g.defined()) return out;
      if (ctx->needs_input_grad(0)) {
        const bool first = ctx->saved_data.count("force_pass") == 0;
        if (first) ctx->saved_data["force_pass"] = g.detach();
        out[0] = WeightGradMM::apply(g, b, token, first, b_t);
      }
      if (ctx->needs_input_grad(1)) out[1] = DenseMM::apply(a.t(), g);
      return out;
    }
    if (ctx->needs_input_grad(0) && g.defined()) out[0] = product_kernel(g, b_t.defined() ? b_t : b.t());
    if (ctx->needs_input_grad(1)) {
      at::Tensor gb = g.defined() ? product_kernel(a.t(), g) : at::Tensor();
      if (routed.defined()) {  // + routed^T g', g' the gradient of the first force pass
        const at::Tensor force_pass = ctx->saved_data["force_pass"].toTensor();
        if (gb.defined()) product_into(routed.t(), force_pass, gb, true);
        else gb = product_kernel(routed.t(), force_pass);
      }
      out[1] = gb;
    }
    return out;
  }
};

}  // namespace

at::Tensor TransposeCache::transposed(const at::Tensor& weight) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const bool same = weight_.defined() && weight_.is_same(weight) && weight.data_ptr() == data_ &&
                    weight._version() == version_ && transposed_.size(0) == weight.size(1) &&
                    transposed_.size(1) == weight.size(0) && transposed_.scalar_type() == weight.scalar_type();
  if (!same) {
    // A new tensor, not the kept one overwritten: an evaluation's graph may still hold that.
    transposed_ = transposed_copy(weight.detach());
    weight_ = weight;
    storage_ = weight.storage();
    data_ = weight.data_ptr();
    version_ = weight._version();
  }
  return transposed_;
}

at::Tensor dense_mm(const at::Tensor& a, const at::Tensor& b, TransposeCache* cache) {
  if (!on_fast_path(a, b)) return at::mm(a, b);
  return WeightMM::apply(a, b, cache)[0];
}

at::Tensor dense_addmm(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b, TransposeCache* cache) {
  if (!on_fast_path(a, b)) return at::addmm(bias, a, b);
  return WeightMM::apply(a, b, cache)[0] + bias;
}

}  // namespace atomforge::model
