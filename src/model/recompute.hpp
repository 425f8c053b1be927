#pragma once
// Activation recomputation for the force pass of large graphs: a layer runs without keeping its
// activations, and the backward runs it again, keeping them only while it differentiates
// through it. Message-passing models hold one layer's activations at a time instead of all of
// them, for one more forward pass.
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "core/thread_flag.hpp"

namespace atomforge::model {

using LayerFunction = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

// fn(inputs), with gradients to `inputs` that run fn again. Only the inputs are differentiated:
// parameters fn reads get no gradient, so use it where none is asked for (inference, under a
// RecomputeScope). fn must compute the same thing when run again (no randomness) and must not
// return one of its inputs. Without grad mode, or no input requiring grad, it is fn(inputs).
std::vector<at::Tensor> recompute_in_backward(const LayerFunction& fn, const std::vector<at::Tensor>& inputs);

// While one lives on this thread, descriptors that can (DimeNet) run their layers through
// recompute_in_backward. EnergyModel::evaluate opens one for force passes over large graphs.
using RecomputeScope = ThreadFlagScope<struct RecomputeTag>;

}  // namespace atomforge::model
