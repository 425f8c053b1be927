#include "train/backward.hpp"

#include <torch/csrc/autograd/autograd.h>

namespace atomforge::train {

void backward_to_parameters(const at::Tensor& loss, const model::ParameterList& parameters) {
  std::vector<at::Tensor> trainable;
  for (const auto& [name, tensor] : parameters.parameters())
    if (tensor->requires_grad()) trainable.push_back(*tensor);
  if (trainable.empty()) return;
  torch::autograd::backward({loss}, {}, /*retain_graph=*/c10::nullopt, /*create_graph=*/false, trainable);
}

}  // namespace atomforge::train
