#pragma once
// se_e2_a's sum over a centre's neighbours, T[i] = sum_r env[r]^T g[r], written as a loop over
// rows grouped by centre instead of libtorch's index_add of outer products (a (rows, C, M)
// intermediate, twice over in force training). Differentiable to any order: its derivatives are
// expressed through the same family of functions.
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

}  // namespace atomforge::model
