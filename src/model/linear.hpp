#pragma once
// A dense layer y = x W (+ b) for the graph trunks, whose blocks are built from plain linear maps
// (DeePMD-kit's Mlp adds residual connections by width, which those blocks do not want).
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/graph_partition.hpp"
#include "model/parameters.hpp"

namespace atomforge::model {

class Linear {
 public:
  Linear() = default;
  // W ~ N(0, 1/in) keeps the variance of the features through the layer; b = 0.
  Linear(int64_t in, int64_t out, bool bias, at::ScalarType dtype, at::Generator& generator);
  at::Tensor forward(const at::Tensor& x) const;
  // forward(x) split into `parts` equal column blocks, each its own product: no copies of the
  // narrowed views of one product where the blocks are used apart (and no concatenation of their
  // gradients), for per-edge outputs (PaiNN's filters) where those passes cost most.
  std::vector<at::Tensor> forward_parts(const at::Tensor& x, int64_t parts) const;
  // This layer with its weights entering a rank's share of a partitioned graph (their gradient
  // is then summed over the group).
  Linear entered(const GraphPartition& partition) const;
  const at::Tensor& matrix() const { return matrix_; }  // W, (in, out)
  void register_into(ParameterList& list, const std::string& prefix);

 private:
  at::Tensor matrix_, bias_;
};

// x * sigmoid(x) (SiLU), one element-wise pass in value and in each derivative (swish.cpp).
at::Tensor swish(const at::Tensor& x);

}  // namespace atomforge::model
