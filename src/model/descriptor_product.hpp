#pragma once
// se_e2_a's descriptor from the per-centre environment matrix T (natoms, C, m1):
// D[i] = scale * T[i]^T T[i][:, :m2], (natoms, m1 * m2). One function with its derivatives written
// out (each is a per-centre product of a (C, m1) and an (m1, m2) or (C, m2) block, and each one's
// derivative is one of them again, so any order works): through libtorch's bmm, transpose and
// narrow, a training step spent more time in their copies, zero fills and gradient sums than in
// the products themselves.
#include <cstdint>

#include <ATen/ATen.h>

namespace atomforge::model {

at::Tensor descriptor_product(const at::Tensor& t, int64_t m2, double scale);

}  // namespace atomforge::model
