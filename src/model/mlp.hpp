#pragma once
// DeePMD-kit's fully connected stacks. A hidden layer is y = act(x W + b), times a learned
// per-unit timestep `idt` when resnet_dt, plus x when the width is kept, or plus [x, x] when it
// doubles. Initialisation as DeePMD-kit: W ~ N(0, 1/(in+out)), b ~ N(0, 1), idt ~ N(0.1, 0.001).
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/dense_mm.hpp"
#include "model/parameters.hpp"

namespace atomforge::model {

using Activation = at::Tensor (*)(const at::Tensor&);
Activation activation_by_name(const std::string& name);  // error on unknown names

struct MlpLayer {
  at::Tensor matrix, bias, idt;  // idt undefined unless resnet_dt
  bool activate = true;          // false for the linear output layer
  // matrix's transpose between evaluations (dense_mm.hpp); shared by copies of the layer, which
  // share its matrix.
  std::shared_ptr<TransposeCache> transposed = std::make_shared<TransposeCache>();
};

class Mlp {
 public:
  // Layers in_dim -> widths[0] -> ... ; when `linear_output` a final linear layer to `out_dim`.
  Mlp(int64_t in_dim, const std::vector<int64_t>& widths, bool resnet_dt, const std::string& activation,
      bool linear_output, int64_t out_dim, at::ScalarType dtype, at::Generator& generator);
  at::Tensor forward(const at::Tensor& x) const;
  void register_into(ParameterList& list, const std::string& prefix);
  int64_t out_dim() const;
  std::vector<MlpLayer>& layers() { return layers_; }
  const std::vector<MlpLayer>& layers() const { return layers_; }
  const std::string& activation_name() const { return activation_name_; }

 private:
  std::vector<MlpLayer> layers_;
  std::string activation_name_;
  Activation activation_;
};

}  // namespace atomforge::model
