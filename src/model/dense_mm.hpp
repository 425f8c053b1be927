#pragma once
// The dense layers' matrix product a (m x k) . b (k x n) through block_gemm's kernels (LIBXSMM's
// generated code where the build has it) with the rows split over libtorch's threads. On the
// fitting net's shapes, (128 x 1600)(1600 x 240) and its derivatives, libtorch's mm through
// OpenBLAS reaches 25-45 GFLOP/s per core, LIBXSMM 44-56. Differentiable to any order: its
// derivatives are products of the same kind (forces, and the training gradient of a force loss,
// stay on this path). The second operand's gradient from a training step's two passes (the
// product itself and the force pass's product through it) is formed in one buffer, not as two
// tensors the autograd engine then adds (a pass over the weight of its own: (1600, 240) for the
// fitting's first layer). Other devices and types, and builds without a BLAS, use at::mm.
#include <ATen/ATen.h>

namespace atomforge::model {

at::Tensor dense_mm(const at::Tensor& a, const at::Tensor& b);

// dense_mm(a, b) + bias (broadcast over rows), as at::addmm.
at::Tensor dense_addmm(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b);

}  // namespace atomforge::model
