#include "model/linear.hpp"

#include <cmath>

#include "model/dense_mm.hpp"

namespace atomforge::model {

Linear::Linear(int64_t in, int64_t out, bool bias, at::ScalarType dtype, at::Generator& generator) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  matrix_ = at::normal(0.0, 1.0 / std::sqrt(static_cast<double>(in)), {in, out}, generator, options)
                .to(dtype)
                .set_requires_grad(true);
  if (bias) bias_ = at::zeros({out}, options.dtype(dtype)).set_requires_grad(true);
}

at::Tensor Linear::forward(const at::Tensor& x) const {
  return bias_.defined() ? dense_addmm(bias_, x, matrix_) : dense_mm(x, matrix_);
}

std::vector<at::Tensor> Linear::forward_parts(const at::Tensor& x, int64_t parts) const {
  const int64_t width = matrix_.size(1) / parts;
  std::vector<at::Tensor> out;
  for (int64_t k = 0; k < parts; ++k) {
    const at::Tensor block = matrix_.narrow(1, k * width, width);
    out.push_back(bias_.defined() ? dense_addmm(bias_.narrow(0, k * width, width), x, block) : dense_mm(x, block));
  }
  return out;
}

void Linear::register_into(ParameterList& list, const std::string& prefix) {
  list.add_parameter(prefix + "w", &matrix_);
  if (bias_.defined()) list.add_parameter(prefix + "b", &bias_);
}

Linear Linear::entered(const GraphPartition& partition) const {
  Linear copy = *this;
  copy.matrix_ = partition.enter(matrix_);
  if (bias_.defined()) copy.bias_ = partition.enter(bias_);
  return copy;
}

}  // namespace atomforge::model
