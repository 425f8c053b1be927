#pragma once
// A table's rows split into groups (atoms by type, for the per-type fitting nets) and merged back.
// index_select per group and index_add into zeros for the way back, as libtorch differentiates
// them, cost a zero fill of the whole table per group and an out-of-place sum of those tables in
// every backward pass (four (natoms, 1600) fills and two sums per se_e2_a training step). Here the
// split's derivative is one merge, which writes each row once, and the merge's derivative is the
// split: differentiable to any order.
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace atomforge::model {

struct RowGroups {
  std::vector<at::Tensor> index;  // int64, the rows of each group in order
  int64_t rows = 0;               // rows of the whole table
  bool covers_all = false;        // every row is in exactly one group
  // Per group, its first row when its rows are consecutive (atoms sorted by type, as DeePMD-kit's
  // systems usually are), else -1: such a part is a view of the table, not a copy.
  std::vector<int64_t> first;
};

// Group g: the rows whose value is g, for values in [0, groups); rows with other values are in no
// group (their merged rows are zero).
RowGroups group_rows_by_value(const at::Tensor& values, int64_t groups);

// part g = x[index[g]] (rows along dimension 0).
std::vector<at::Tensor> split_row_groups(const at::Tensor& x, const RowGroups& groups);

// The inverse: out (rows, ...) with out[index[g]] = parts[g]; rows of no group are zero.
at::Tensor merge_row_groups(at::TensorList parts, const RowGroups& groups);

}  // namespace atomforge::model
