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
#include <mutex>

#include <ATen/ATen.h>

namespace atomforge::model {

// A weight's row-major transpose, which the force pass's product g W^T runs on, kept from one
// evaluation to the next while the weight is the same tensor at the same version: an MD run or
// a test set evaluates fixed weights frame after frame, and copying the fitting net's transposes
// was 5 % of a 192-atom frame. Training changes the weights every step; each step then copies
// them once, as without the cache. A weight written in place must bump its version counter, as
// libtorch's in-place operators do (autograd relies on it too); the cache also keeps the weight's
// storage alive, so that a new one at the same address cannot pass for it.
class TransposeCache {
 public:
  at::Tensor transposed(const at::Tensor& weight);

 private:
  std::mutex mutex_;
  at::Tensor weight_, transposed_;
  c10::Storage storage_;
  const void* data_ = nullptr;
  uint32_t version_ = 0;
};

// With a cache, b's transpose for the force pass comes from it.
at::Tensor dense_mm(const at::Tensor& a, const at::Tensor& b, TransposeCache* cache = nullptr);

// dense_mm(a, b) + bias (broadcast over rows), as at::addmm.
at::Tensor dense_addmm(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b,
                       TransposeCache* cache = nullptr);

}  // namespace atomforge::model
