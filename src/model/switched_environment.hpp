#pragma once
// se_e2_a's environment rows, (s, s x/r, s y/r, s z/r) with s = w(r) / (r + protection) and w
// DeePMD-kit's smooth switch (1 below rcut_smth, 0 from rcut, C2 between), normalised by the
// per-(centre type, slot) statistics. The fused form is one pass per derivative over the rows
// instead of some twenty libtorch operators over (edges x 1..4) tensors in each of the forward
// pass, the force pass and the training backward (there, with their derivatives, a few hundred
// small operators per step, most of them on one thread).
#include <ATen/ATen.h>

namespace atomforge::model {

struct SwitchedEnvironment {
  double rcut, rcut_smth, protection;
};

// (s, s rij / r) for edge vectors rij (n, 3): libtorch operators, any device and order.
at::Tensor environment_rows_reference(const at::Tensor& rij, const SwitchedEnvironment& env);

// (rows(edge_vec[edges]) - avg[stat_row]) / std[stat_row], (n, 4), for edge_vec (ne, 3), edges and
// stat_row (n) int64, avg and std (nstat, 4) constants (no gradient). First and second
// derivatives along edge_vec in closed form on CPU; other devices and higher orders through the
// reference operators.
at::Tensor normalised_environment(const at::Tensor& edge_vec, const at::Tensor& edges, const at::Tensor& stat_row,
                                  const at::Tensor& avg, const at::Tensor& std, const SwitchedEnvironment& env);

}  // namespace atomforge::model
