#pragma once
// A net's parameters as fresh autograd leaves, for tests that take gradients along them.
#include <vector>

#include <ATen/ATen.h>

#include "model/mlp.hpp"

namespace atomforge::testing {

struct Leaves {
  model::Mlp net;                  // a copy of the net that uses the leaves
  std::vector<at::Tensor> params;  // its parameters in order, each requiring grad
};

inline Leaves fresh_leaves(const model::Mlp& net) {
  Leaves out{net, {}};
  for (auto& layer : out.net.layers())
    for (at::Tensor* t : {&layer.matrix, &layer.bias, &layer.idt})
      if (t->defined()) {
        *t = t->detach().clone().set_requires_grad(true);
        out.params.push_back(*t);
      }
  return out;
}

}  // namespace atomforge::testing
