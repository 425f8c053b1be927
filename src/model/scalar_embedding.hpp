#pragma once
// se_e2_a's embedding nets map one number per neighbour, s(r), to a row of features G. The
// derivative along that single input, the slope dG/ds, is a row too: carried forward with the
// values (forward mode, one more matrix product per layer), it turns the force pass into one
// row-dot per neighbour instead of a backward pass through the net. The training backward then
// runs through values and slopes together over blocks of neighbours small enough for the cache,
// instead of a dozen libtorch element-wise operators, each a pass over (neighbours x width)
// tensors in memory.
#include <utility>

#include <ATen/ATen.h>

#include "model/mlp.hpp"

namespace atomforge::model {

// Whether the fused path applies: tanh hidden layers only, one input column, CPU, float or double.
bool scalar_embedding_fusable(const Mlp& net, const at::Tensor& x);

// net(x) for x (n, 1): through the fused path when it applies, Mlp::forward otherwise. First and
// second derivatives (forces, and the training gradient of a force loss) run fused; higher ones
// through libtorch operators.
at::Tensor scalar_embedding(const Mlp& net, const at::Tensor& x);

// net(x) twice: the second a separate tensor with the same values and storage, for a second
// consumer (the contraction's derivative along the environment). The training gradients reaching
// the two are added block by block in the net's backward, in cache, instead of by libtorch's
// engine in a pass over (n x width) of their own.
std::pair<at::Tensor, at::Tensor> scalar_embedding_shared(const Mlp& net, const at::Tensor& x);

// While one lives on this thread, fused nets evaluated here keep no activations for parameter
// gradients: forces need only the slope (inference, molecular dynamics). A parameter gradient
// asked for later is still exact: the net runs again.
class ForcesOnlyScope {
 public:
  ForcesOnlyScope();
  ~ForcesOnlyScope();
  ForcesOnlyScope(const ForcesOnlyScope&) = delete;
  ForcesOnlyScope& operator=(const ForcesOnlyScope&) = delete;

 private:
  bool previous_;
};

// Value and slope written with libtorch operators (tanh nets): the higher-derivative path and the
// reference the fused path is tested against.
std::pair<at::Tensor, at::Tensor> scalar_embedding_reference(const Mlp& net, const at::Tensor& x);

}  // namespace atomforge::model
