#pragma once
// Adam with PyTorch's defaults and update rule (bias-corrected, eps outside the sqrt), written
// out so that its whole state is plain named tensors that checkpoints save and restore exactly.
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/tensor_file.hpp"
#include "model/parameters.hpp"

namespace atomforge::train {

class Adam {
 public:
  explicit Adam(const model::ParameterList& parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  // Updates every trainable parameter that has a gradient, then clears the gradients.
  void step(double lr);
  int64_t steps_taken() const { return step_; }
  void save(TensorFile& file) const;
  void load(const TensorFile& file, const std::string& source);
  // The moments moved to where the parameters now are (after EnergyModel::to).
  void to(at::Device device);

 private:
  const model::ParameterList& parameters_;
  double beta1_, beta2_, eps_;
  int64_t step_ = 0;
  std::vector<at::Tensor> m_, v_;
};

}  // namespace atomforge::train
