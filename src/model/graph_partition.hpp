#pragma once
// Graph parallelism (fairchem's GemNet-GP, restated): the ranks of a group hold the same graph
// and each computes its own contiguous share of the expensive work: the per-edge messages
// (PaiNN), the edges and the triplets those edges start (DimeNet). Two crossings, each with the other as its gradient, keep everything else
// replicated and exact:
//   enter(x): a replicated tensor (node features, edge vectors, a weight) used in per-rank work;
//             forward identity, backward sums the ranks' partial gradients;
//   leave(x): per-rank partial sums (aggregations) becoming replicated; forward sums over the
//             group, backward identity.
// Both are autograd functions whose backward is the other, so force training (double backward)
// works. Energy, forces, virial and every parameter gradient then come out whole and identical
// on every rank of the group: nothing is reduced afterwards.
#include <cstdint>
#include <memory>

#include <ATen/ATen.h>

#include "model/communicator.hpp"

namespace atomforge::model {

class GraphPartition {
 public:
  GraphPartition() = default;  // one process: the whole graph, crossings are identities
  explicit GraphPartition(std::shared_ptr<Communicator> group) : group_(std::move(group)) {}

  int ranks() const { return group_ ? group_->world_size() : 1; }
  // This rank's contiguous [begin, begin + count) of n items.
  struct Range {
    int64_t begin = 0, count = 0;
  };
  Range share(int64_t n) const;
  at::Tensor enter(const at::Tensor& x) const;
  at::Tensor leave(const at::Tensor& x) const;

 private:
  std::shared_ptr<Communicator> group_;
};

}  // namespace atomforge::model
