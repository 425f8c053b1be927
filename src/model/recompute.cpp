#include "model/recompute.hpp"

#include <memory>
#include <string>

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include "core/error.hpp"

namespace atomforge::model {

namespace {

// The backward of recompute_in_backward: runs the layer again from its inputs, with grad mode
// on, and differentiates it for the gradients that arrived.
struct RecomputeBackward : torch::autograd::Node {
  LayerFunction fn;
  std::vector<at::Tensor> inputs;  // detached; emptied once released
  std::vector<bool> wanted;        // which inputs required grad

  std::string name() const override { return "RecomputeBackward"; }
  void release_variables() override { inputs.clear(); }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (inputs.empty()) fail("internal: a recomputed layer was differentiated twice without retain_graph");
    std::vector<at::Tensor> again, differentiated;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      again.push_back(wanted[k] ? inputs[k].detach().requires_grad_(true) : inputs[k]);
      if (wanted[k]) differentiated.push_back(again.back());
    }
    std::vector<at::Tensor> outputs;
    {
      const at::AutoGradMode grad_mode(true);
      outputs = fn(again);
    }
    std::vector<at::Tensor> reached, arrived;
    for (std::size_t k = 0; k < outputs.size(); ++k)
      if (grads[k].defined() && outputs[k].requires_grad()) {
        reached.push_back(outputs[k]);
        arrived.push_back(grads[k]);
      }
    torch::autograd::variable_list out(inputs.size());
    if (reached.empty()) return out;
    const auto found = torch::autograd::grad(reached, differentiated, arrived, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t k = 0, d = 0; k < inputs.size(); ++k)
      if (wanted[k]) out[k] = found[d++];
    return out;
  }
};

}  // namespace

std::vector<at::Tensor> recompute_in_backward(const LayerFunction& fn, const std::vector<at::Tensor>& inputs) {
  bool any = false;
  for (const auto& x : inputs) any = any || (x.defined() && x.requires_grad());
  if (!at::GradMode::is_enabled() || !any) return fn(inputs);
  auto node = std::shared_ptr<RecomputeBackward>(new RecomputeBackward(), torch::autograd::deleteNode);
  node->fn = fn;
  for (const auto& x : inputs) {
    node->inputs.push_back(x.defined() ? x.detach() : x);
    node->wanted.push_back(x.defined() && x.requires_grad());
  }
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  std::vector<at::Tensor> outputs;
  {
    const at::NoGradGuard no_grad;
    outputs = fn(node->inputs);
  }
  for (auto& y : outputs) {
    for (const auto& x : node->inputs)
      if (y.defined() && x.defined() && y.is_alias_of(x)) fail("internal: a recomputed layer returned a view of its input");
    torch::autograd::set_history(y, node);
  }
  return outputs;
}

}  // namespace atomforge::model
