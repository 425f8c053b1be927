#include "model/graph_partition.hpp"

#include <torch/csrc/autograd/custom_function.h>

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor summed(const at::Tensor& x, Communicator* group) {
  std::vector<at::Tensor> y = {x.clone()};
  group->allreduce_sum(y);
  return y[0];
}

struct Enter : torch::autograd::Function<Enter> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

struct Leave : torch::autograd::Function<Leave> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return summed(x, reinterpret_cast<Communicator*>(group));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {Enter::apply(grad[0], ctx->saved_data["group"].toInt()), at::Tensor()};
  }
};

// Custom functions get zeros for undefined gradients (materialised), so every rank joins every
// sum even when its share contributed nothing.
variable_list Enter::backward(AutogradContext* ctx, variable_list grad) {
  return {Leave::apply(grad[0], ctx->saved_data["group"].toInt()), at::Tensor()};
}

}  // namespace

GraphPartition::Range GraphPartition::share(int64_t n) const {
  if (!group_) return {0, n};
  const int64_t p = group_->world_size(), r = group_->rank();
  const int64_t begin = n * r / p, end = n * (r + 1) / p;
  return {begin, end - begin};
}

at::Tensor GraphPartition::enter(const at::Tensor& x) const {
  if (!group_ || group_->world_size() == 1) return x;
  return Enter::apply(x, reinterpret_cast<int64_t>(group_.get()));
}

at::Tensor GraphPartition::leave(const at::Tensor& x) const {
  if (!group_ || group_->world_size() == 1) return x;
  return Leave::apply(x, reinterpret_cast<int64_t>(group_.get()));
}

}  // namespace atomforge::model
