#pragma once
// The training backward pass: gradients of the loss for the trainable parameters only. The
// force pass leaves the positions (edge vectors) on the graph; Tensor::backward would also
// carry the loss's gradient down to them, through every operator that leads nowhere else.
#include <ATen/ATen.h>

#include "model/parameters.hpp"

namespace atomforge::train {

// Accumulates d loss / d p into p.grad() for each parameter p that requires a gradient.
void backward_to_parameters(const at::Tensor& loss, const model::ParameterList& parameters);

}  // namespace atomforge::train
