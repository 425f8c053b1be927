#include "model/mlp.hpp"

#include <cmath>

#include "core/error.hpp"
#include "model/dense_mm.hpp"
#include "model/linear.hpp"
#include "model/tanh_layer.hpp"

namespace atomforge::model {

namespace {

at::Tensor act_tanh(const at::Tensor& x) { return at::tanh(x); }
at::Tensor act_relu(const at::Tensor& x) { return at::relu(x); }
at::Tensor act_gelu(const at::Tensor& x) { return at::gelu(x, "tanh"); }
at::Tensor act_softplus(const at::Tensor& x) { return at::softplus(x); }
at::Tensor act_sigmoid(const at::Tensor& x) { return at::sigmoid(x); }
at::Tensor act_linear(const at::Tensor& x) { return x; }

MlpLayer make_layer(int64_t in, int64_t out, bool with_idt, bool activate, at::ScalarType dtype,
                    at::Generator& generator) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  MlpLayer layer;
  layer.matrix = at::normal(0.0, 1.0 / std::sqrt(static_cast<double>(in + out)), {in, out}, generator, options);
  layer.bias = at::normal(0.0, 1.0, {out}, generator, options);
  if (with_idt) layer.idt = at::normal(0.1, 0.001, {out}, generator, options);
  layer.activate = activate;
  for (at::Tensor* t : {&layer.matrix, &layer.bias, &layer.idt})
    if (t->defined()) *t = t->to(dtype).set_requires_grad(true);
  return layer;
}

}  // namespace

Activation activation_by_name(const std::string& name) {
  if (name == "tanh") return act_tanh;
  if (name == "relu") return act_relu;
  if (name == "gelu" || name == "gelu_tf") return act_gelu;
  if (name == "softplus") return act_softplus;
  if (name == "sigmoid") return act_sigmoid;
  if (name == "silu" || name == "swish") return swish;
  if (name == "linear" || name == "none") return act_linear;
  fail("unknown activation_function '{}' (known: tanh, relu, gelu, softplus, sigmoid, silu, linear)", name);
}

Mlp::Mlp(int64_t in_dim, const std::vector<int64_t>& widths, bool resnet_dt, const std::string& activation,
         bool linear_output, int64_t out_dim, at::ScalarType dtype, at::Generator& generator)
    : activation_name_(activation), activation_(activation_by_name(activation)) {
  int64_t in = in_dim;
  for (int64_t width : widths) {
    layers_.push_back(make_layer(in, width, resnet_dt, true, dtype, generator));
    in = width;
  }
  if (linear_output) layers_.push_back(make_layer(in, out_dim, false, false, dtype, generator));
}

at::Tensor Mlp::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (const auto& layer : layers_) {
    if (layer.activate && activation_ == act_tanh) {
      h = tanh_layer(dense_mm(h, layer.matrix, layer.transposed.get()), layer.bias, layer.idt, h);
      continue;
    }
    const at::Tensor y = dense_addmm(layer.bias, h, layer.matrix, layer.transposed.get());
    h = layer.activate ? timestep_and_residual(activation_(y), layer.idt, h) : y;
  }
  return h;
}

void Mlp::register_into(ParameterList& list, const std::string& prefix) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = prefix + "layers." + std::to_string(i) + ".";
    list.add_parameter(p + "w", &layers_[i].matrix);
    list.add_parameter(p + "b", &layers_[i].bias);
    if (layers_[i].idt.defined()) list.add_parameter(p + "idt", &layers_[i].idt);
  }
}

int64_t Mlp::out_dim() const { return layers_.back().matrix.size(1); }

}  // namespace atomforge::model
