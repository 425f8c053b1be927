#pragma once
// Named tensors of a model: trainable parameters and non-trainable buffers (statistics, energy
// bias). Components register their member tensors here by name; the optimiser, checkpoints and
// model files all work from this one list, so nothing is saved or updated twice.
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "core/tensor_file.hpp"

namespace atomforge::model {

class ParameterList {
 public:
  void add_parameter(std::string name, at::Tensor* tensor) { parameters_.emplace_back(std::move(name), tensor); }
  void add_buffer(std::string name, at::Tensor* tensor) { buffers_.emplace_back(std::move(name), tensor); }
  const std::vector<std::pair<std::string, at::Tensor*>>& parameters() const { return parameters_; }
  const std::vector<std::pair<std::string, at::Tensor*>>& buffers() const { return buffers_; }
  int64_t parameter_count() const;
  // Every parameter (still a leaf, still requiring its gradient) and buffer moved to `device`.
  void to(at::Device device);

  // Writes every parameter and buffer into `file` under `prefix` + name.
  void save(TensorFile& file, const std::string& prefix) const;
  // Reads them back; missing names or shape mismatches are errors naming `source`.
  void load(const TensorFile& file, const std::string& prefix, const std::string& source);

 private:
  std::vector<std::pair<std::string, at::Tensor*>> parameters_;
  std::vector<std::pair<std::string, at::Tensor*>> buffers_;
};

Blob to_blob(const at::Tensor& tensor);
at::Tensor from_blob(const Blob& blob);

}  // namespace atomforge::model
