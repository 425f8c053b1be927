#pragma once
// Suffix sums of the row blocks of a table: for a block of n rows x[0..n-1], n + 1 rows
// out[k] = x[k] + ... + x[n-1] (out[n] = 0). se_e2_a's padding share: a centre's padded slots of a
// neighbour type are the last of that type's block, so their sum is one row of this. One pass
// each way instead of libtorch's flip, cumsum, flip (three copies per block, and as many in
// every backward pass). Differentiable to any order: the derivative is the prefix sum, whose
// derivative is this again.
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace atomforge::model {

// x (sum of sizes, w) -> (sum of (sizes + 1), w), blocks in order.
at::Tensor block_suffix_sums(const at::Tensor& x, const std::vector<int64_t>& sizes);

}  // namespace atomforge::model
