#include "model/suffix_sums.hpp"

#include <numeric>

#include <ATen/Dispatch.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.hpp"
#include "core/vector_clones.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Block b: n rows of the short table (x, or the prefix sums' output) from row `s`, n + 1 rows of
// the long one (the suffix sums' output, or the prefix sums' input) from row `l`.
template <typename T>
ATOMFORGE_VECTOR_CLONES void suffix_rows(const T* x, T* out, int64_t n, int64_t w) {
  T* last = out + n * w;
  for (int64_t j = 0; j < w; ++j) last[j] = 0;
  for (int64_t k = n - 1; k >= 0; --k) {
    const T* below = out + (k + 1) * w;
    const T* xk = x + k * w;
    T* o = out + k * w;
    for (int64_t j = 0; j < w; ++j) o[j] = below[j] + xk[j];
  }
}

template <typename T>
ATOMFORGE_VECTOR_CLONES void prefix_rows(const T* g, T* out, int64_t n, int64_t w) {
  for (int64_t k = 0; k < n; ++k) {
    const T* gk = g + k * w;
    T* o = out + k * w;
    if (k == 0)
      for (int64_t j = 0; j < w; ++j) o[j] = gk[j];
    else
      for (int64_t j = 0; j < w; ++j) o[j] = o[j - w] + gk[j];
  }
}

int64_t total(const std::vector<int64_t>& sizes) { return std::accumulate(sizes.begin(), sizes.end(), int64_t{0}); }

// suffix: (sum n, w) -> (sum (n + 1), w); else prefix: (sum (n + 1), w) -> (sum n, w).
at::Tensor kernel(const at::Tensor& in_any, const std::vector<int64_t>& sizes, bool suffix) {
  const at::Tensor in = in_any.contiguous();
  const int64_t w = in.size(1), blocks = static_cast<int64_t>(sizes.size());
  at::Tensor out = at::empty({total(sizes) + (suffix ? blocks : 0), w}, in.options());
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "block_suffix_sums", [&] {
    const scalar_t* src = in.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    int64_t s = 0, l = 0;
    for (const int64_t n : sizes) {
      if (suffix)
        suffix_rows(src + s * w, dst + l * w, n, w);
      else
        prefix_rows(src + l * w, dst + s * w, n, w);
      s += n;
      l += n + 1;
    }
  });
  return out;
}

struct SuffixSums : torch::autograd::Function<SuffixSums> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const std::vector<int64_t>& sizes) {
    ctx->saved_data["sizes"] = sizes;
    return kernel(x, sizes, true);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

struct PrefixSums : torch::autograd::Function<PrefixSums> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const std::vector<int64_t>& sizes) {
    ctx->saved_data["sizes"] = sizes;
    return kernel(g, sizes, false);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {SuffixSums::apply(grad[0], ctx->saved_data["sizes"].toIntVector()), at::Tensor()};
  }
};

variable_list SuffixSums::backward(AutogradContext* ctx, variable_list grad) {
  return {PrefixSums::apply(grad[0], ctx->saved_data["sizes"].toIntVector()), at::Tensor()};
}

}  // namespace

at::Tensor block_suffix_sums(const at::Tensor& x, const std::vector<int64_t>& sizes) {
  if (x.dim() != 2 || x.size(0) != total(sizes))
    fail("block_suffix_sums: a ({} dimensions, {} rows) table for blocks of {} rows in all", x.dim(),
         x.dim() > 0 ? x.size(0) : 0, total(sizes));
  for (const int64_t n : sizes)
    if (n < 0) fail("block_suffix_sums: a block of {} rows", n);
  if (cpu_kernels_for(x)) return SuffixSums::apply(x, sizes);
  std::vector<at::Tensor> blocks;
  int64_t row = 0;
  for (const int64_t n : sizes) {
    const at::Tensor block = x.narrow(0, row, n);
    blocks.push_back(block.flip(0).cumsum(0).flip(0));
    blocks.push_back(at::zeros({1, x.size(1)}, x.options()));
    row += n;
  }
  return blocks.empty() ? at::zeros({0, x.size(1)}, x.options()) : at::cat(blocks);
}

}  // namespace atomforge::model
