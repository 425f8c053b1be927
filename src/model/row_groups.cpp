#include "model/row_groups.hpp"

#include <cstring>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrainRows = 32;

void save_groups(AutogradContext* ctx, const RowGroups& groups) {
  ctx->saved_data["index"] = c10::List<at::Tensor>(groups.index);
  ctx->saved_data["rows"] = groups.rows;
  ctx->saved_data["covers_all"] = groups.covers_all;
  ctx->saved_data["first"] = groups.first;
}

RowGroups saved_groups(AutogradContext* ctx) {
  RowGroups groups;
  for (const at::Tensor& index : ctx->saved_data["index"].toTensorList()) groups.index.push_back(index);
  groups.rows = ctx->saved_data["rows"].toInt();
  groups.covers_all = ctx->saved_data["covers_all"].toBool();
  groups.first = ctx->saved_data["first"].toIntVector();
  return groups;
}

// Whole rows in parallel: row index[r] of `from` to row r of `to`, or row r of `from` to row
// index[r] of `to` when scatter.
void copy_rows(const void* from, void* to, const at::Tensor& index, int64_t row_bytes, bool scatter) {
  const auto* src = static_cast<const char*>(from);
  auto* dst = static_cast<char*>(to);
  const int64_t* rows = index.data_ptr<int64_t>();
  at::parallel_for(0, index.size(0), kGrainRows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t to_row = scatter ? rows[r] : r, from_row = scatter ? r : rows[r];
      std::memcpy(dst + to_row * row_bytes, src + from_row * row_bytes, row_bytes);
    }
  });
}

// A view for consecutive rows, else whole rows copied in parallel when `in_function` (inside
// Split, which differentiates itself; libtorch's index_select copies (128, 1600) on one thread, a
// third of a millisecond); without it, index_select, which libtorch differentiates (the path for
// other devices).
variable_list split_kernel(const at::Tensor& x, const RowGroups& groups, bool in_function) {
  variable_list parts;
  parts.reserve(groups.index.size());
  const bool rows_whole = in_function && x.is_contiguous() && x.device().is_cpu();
  for (std::size_t g = 0; g < groups.index.size(); ++g) {
    const at::Tensor& index = groups.index[g];
    if (groups.first.size() == groups.index.size() && groups.first[g] >= 0) {
      parts.push_back(x.narrow(0, groups.first[g], index.size(0)));
      continue;
    }
    if (!rows_whole || x.numel() == 0) {
      parts.push_back(x.index_select(0, index));
      continue;
    }
    std::vector<int64_t> shape = x.sizes().vec();
    shape[0] = index.size(0);
    at::Tensor part = at::empty(shape, x.options());
    copy_rows(x.data_ptr(), part.data_ptr(), index, x.nbytes() / x.size(0), /*scatter=*/false);
    parts.push_back(part);
  }
  return parts;
}

at::Tensor merge_kernel(at::TensorList parts, const RowGroups& groups) {
  const at::Tensor& first = parts.front();
  std::vector<int64_t> shape = first.sizes().vec();
  shape[0] = groups.rows;
  at::Tensor out = groups.covers_all ? at::empty(shape, first.options()) : at::zeros(shape, first.options());
  // Whole rows copied: libtorch's index_copy_ runs its element loop per row, a third of a
  // millisecond for (128, 1600).
  const int64_t row_bytes = out.numel() == 0 ? 0 : out.nbytes() / groups.rows;
  for (std::size_t g = 0; g < parts.size(); ++g) {
    const at::Tensor part = parts[g].to(out.scalar_type()).contiguous();
    copy_rows(part.data_ptr(), out.data_ptr(), groups.index[g], row_bytes, /*scatter=*/true);
  }
  return out;
}

struct Merge;

struct Split : torch::autograd::Function<Split> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const RowGroups& groups) {
    save_groups(ctx, groups);
    return split_kernel(x, groups, true);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

struct Merge : torch::autograd::Function<Merge> {
  static at::Tensor forward(AutogradContext* ctx, at::TensorList parts, const RowGroups& groups) {
    save_groups(ctx, groups);
    return merge_kernel(parts, groups);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    variable_list out = Split::apply(grad[0], saved_groups(ctx));
    out.emplace_back();  // the groups
    return out;
  }
};

// Undefined gradients arrive as zeros (libtorch materialises them), so every part is defined.
variable_list Split::backward(AutogradContext* ctx, variable_list grad) {
  return {Merge::apply(at::TensorList(grad), saved_groups(ctx)), at::Tensor()};
}

}  // namespace

RowGroups group_rows_by_value(const at::Tensor& values, int64_t groups) {
  RowGroups out;
  out.rows = values.size(0);
  int64_t grouped = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const at::Tensor index = (values == g).nonzero().view({-1});
    out.index.push_back(index);
    const int64_t n = index.size(0);
    grouped += n;
    const bool consecutive = values.device().is_cpu() && n > 0 &&
                             index.data_ptr<int64_t>()[n - 1] - index.data_ptr<int64_t>()[0] == n - 1;
    out.first.push_back(consecutive ? index.data_ptr<int64_t>()[0] : -1);
  }
  out.covers_all = grouped == out.rows;
  return out;
}

std::vector<at::Tensor> split_row_groups(const at::Tensor& x, const RowGroups& groups) {
  if (x.size(0) != groups.rows) fail("split_row_groups: the table has {} rows, the groups {}", x.size(0), groups.rows);
  if (!cpu_kernels_for(x)) return split_kernel(x, groups, false);  // differentiable as it is
  return Split::apply(x, groups);
}

at::Tensor merge_row_groups(at::TensorList parts, const RowGroups& groups) {
  if (parts.size() != groups.index.size() || parts.empty())
    fail("merge_row_groups: {} parts for {} groups", parts.size(), groups.index.size());
  for (std::size_t g = 0; g < parts.size(); ++g)
    if (parts[g].size(0) != groups.index[g].size(0))
      fail("merge_row_groups: part {} has {} rows, its group {}", g, parts[g].size(0), groups.index[g].size(0));
  if (!cpu_kernels_for(parts.front())) {
    std::vector<int64_t> shape = parts.front().sizes().vec();
    shape[0] = groups.rows;
    return at::zeros(shape, parts.front().options()).index_copy(0, at::cat(groups.index), at::cat(parts));
  }
  return Merge::apply(parts, groups);
}

}  // namespace atomforge::model
