#pragma once
// Two small contractions of se_e2_a written as loops instead of libtorch's CPU bmm, which (built
// without MKL, as Debian's is) runs one BLAS call per batch entry: 192 atoms x a few hundred
// calls per training step, most of their time spent in call overhead (small_bmm calls LIBXSMM's
// generated kernels per entry instead where the build has them). Both are differentiable to any
// order: each one's derivatives are expressed through the same family of functions.
#include <cstdint>

#include <ATen/ATen.h>

namespace atomforge::model {

// Neighbour rows grouped by centre: rows start[i] .. start[i+1]-1 belong to centre i.
struct Segments {
  at::Tensor start;   // (ncentres + 1) int64
  at::Tensor centre;  // (nrows) int64, the centre of each row
  int64_t centres() const { return start.size(0) - 1; }
  int64_t rows() const { return centre.size(0); }
};

// T[i] = sum over the rows r of centre i of env[r]^T g[r]: (ncentres, C, M) from env (nrows, C)
// and the embedding g (nrows, M).
at::Tensor contract_segments(const at::Tensor& env, const at::Tensor& g, const Segments& segments);

// a[b] . b[b] for (B, N, K) and (B, K, M), any strides.
at::Tensor small_bmm(const at::Tensor& a, const at::Tensor& b);

}  // namespace atomforge::model
