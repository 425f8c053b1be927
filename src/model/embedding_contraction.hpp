#pragma once
// se_e2_a's embedding net and its contraction with the environment rows as one function:
// T[i] = sum over the neighbours r of centre i of env[r]^T G(s_r), s_r = env[r, 0].
//
// Written as two separate functions (net, then contraction), a training step passes over
// (neighbours x width) tensors about eighteen times: the values, the gradient reaching them in
// the force pass, its product with the slope, and the training gradients of each of those. Here
// the force pass reads the net's values and slopes once and writes one row of four numbers per
// neighbour; the training backward forms the gradients reaching the net's outputs a block of
// neighbours at a time, in the cache, from per-centre tables (N x 4 x width).
#include <ATen/ATen.h>

#include "model/mlp.hpp"
#include "model/segment_contraction.hpp"

namespace atomforge::model {

// T (ncentres, C, width) from env (nrows, C) grouped by centre; the net reads env's first column.
// Differentiable to any order; first and second derivatives (forces, and the training gradient
// of a force loss) run fused when the net is (scalar_embedding_fusable), higher ones through
// libtorch operators.
at::Tensor embedding_contraction(const Mlp& net, const at::Tensor& env, const Segments& segments);

// The same through libtorch operators on the net's reference values and slopes: what the fused
// function is tested against.
at::Tensor embedding_contraction_reference(const Mlp& net, const at::Tensor& env, const Segments& segments);

}  // namespace atomforge::model
