#include "train/gradient_sync.hpp"

#include <cstring>

namespace atomforge::train {

namespace {

// Reduces the listed parameters' gradients as one flat tensor and hands each its slice back.
void sum_bucket(const std::vector<at::Tensor*>& bucket, Communicator& comm) {
  std::vector<at::Tensor> pieces;
  for (at::Tensor* p : bucket) {
    const at::Tensor& g = p->grad();
    pieces.push_back(g.defined() ? g.reshape(-1) : at::zeros({p->numel()}, p->options()));
  }
  std::vector<at::Tensor> flat = {at::cat(pieces)};
  comm.allreduce_sum(flat);
  int64_t offset = 0;
  for (at::Tensor* p : bucket) {
    p->mutable_grad() = flat[0].narrow(0, offset, p->numel()).view_as(*p);
    offset += p->numel();
  }
}

}  // namespace

void sum_gradients(const std::vector<at::Tensor*>& parameters, Communicator& comm, int64_t bucket_bytes) {
  if (comm.world_size() == 1 || parameters.empty()) return;
  std::vector<at::Tensor> defined = {at::zeros({static_cast<int64_t>(parameters.size())}, at::kDouble)};
  for (std::size_t k = 0; k < parameters.size(); ++k)
    if (parameters[k]->grad().defined()) defined[0][static_cast<int64_t>(k)] = 1.0;
  comm.allreduce_sum(defined);
  const auto* defined_anywhere = defined[0].data_ptr<double>();

  std::vector<at::Tensor*> bucket;
  int64_t bytes = 0;
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    if (defined_anywhere[k] == 0) continue;
    at::Tensor* p = parameters[k];
    if (!bucket.empty() && (bytes + static_cast<int64_t>(p->nbytes()) > bucket_bytes ||
                            p->scalar_type() != bucket.front()->scalar_type())) {
      sum_bucket(bucket, comm);
      bucket.clear();
      bytes = 0;
    }
    bucket.push_back(p);
    bytes += static_cast<int64_t>(p->nbytes());
  }
  if (!bucket.empty()) sum_bucket(bucket, comm);
}

void broadcast_values(const std::vector<at::Tensor*>& tensors, Communicator& comm, int root) {
  if (comm.world_size() == 1 || tensors.empty()) return;
  std::vector<at::Tensor> values;
  for (at::Tensor* t : tensors) values.push_back(t->detach());
  comm.broadcast(values, root);
  // Written in place behind libtorch's back: bumped as its in-place operators would (a detached
  // tensor shares its source's version counter), so that what was derived from the old values
  // (a kept transpose: model/dense_mm.hpp) is formed again.
  for (at::Tensor& value : values) value.unsafeGetTensorImpl()->bump_version();
}

void broadcast_bytes(std::string& bytes, Communicator& comm, int root) {
  if (comm.world_size() == 1) return;
  std::vector<at::Tensor> length = {at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong)};
  comm.broadcast(length, root);
  std::vector<at::Tensor> payload = {at::empty({length[0].item<int64_t>()}, at::kByte)};
  if (comm.rank() == root) std::memcpy(payload[0].data_ptr(), bytes.data(), bytes.size());
  comm.broadcast(payload, root);
  bytes.assign(static_cast<const char*>(payload[0].data_ptr()), static_cast<std::size_t>(payload[0].numel()));
}

}  // namespace atomforge::train
