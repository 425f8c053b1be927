#pragma once
// The element-wise part of a tanh hidden layer of DeePMD-kit's stacks (model/mlp.hpp),
//   y = tanh(p + b) idt + residual(x),   p = x W,
// as one operator with its first and second derivatives in closed form: the fitting net's
// layers are small (a few hundred rows by 240), where libtorch runs each of the four operators,
// their derivatives and the training backward through those (a dozen more) on one thread, each a
// separate pass with its own allocation and autograd node. Third derivatives go through libtorch
// operators.
#include <ATen/ATen.h>

namespace atomforge::model {

// Whether the fused operator applies: CPU, float or double, one type throughout.
bool tanh_layer_fusable(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                        const at::Tensor& input);

// product (n, out); bias (out); idt (out) or undefined; input (n, in): added as it is when
// out == in, twice side by side when out == 2 in, not at all otherwise.
at::Tensor tanh_layer(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                      const at::Tensor& input);

// The same in libtorch operators: the path for other devices and types, and the tests' reference.
at::Tensor tanh_layer_reference(const at::Tensor& product, const at::Tensor& bias, const at::Tensor& idt,
                                const at::Tensor& input);

// A hidden layer's tail for any activation: activated * idt (when defined) + residual(input),
// the residual as in tanh_layer.
at::Tensor timestep_and_residual(const at::Tensor& activated, const at::Tensor& idt, const at::Tensor& input);

}  // namespace atomforge::model
