#include "model/energy_fitting.hpp"

#include "core/error.hpp"
#include "model/row_groups.hpp"

namespace atomforge::model {

config::Node energy_fitting_schema() {
  using namespace config;
  return object("per-type networks from the descriptor to atomic energies",
                {defaulted("neuron", array(integer("width"), "hidden layer widths"), json::array({120, 120, 120}),
                           {"n_neuron"}),
                 defaulted("activation_function", string("hidden layer activation"), "tanh"),
                 defaulted("resnet_dt", boolean("learned timestep on residual connections"), true),
                 defaulted("precision", string("floating point precision", {"float64", "float32", "default"}),
                           "float64"),
                 defaulted("trainable", boolean("whether the fitting parameters are trained"), true),
                 defaulted("numb_fparam", integer("frame parameters (not supported: must be 0)"), 0),
                 defaulted("numb_aparam", integer("atomic parameters (not supported: must be 0)"), 0),
                 defaulted("dim_case_embd",
                           non_negative(integer("tasks sharing this fitting net (one-hot task input); 0 = one task")), 0),
                 optional("mixed_types", boolean("one network for all atom types instead of one per type; default: "
                                                 "true for descriptors with an element embedding (painn, dimenet)")),
                 optional("rcond", number("cut-off ratio of small singular values in the bias fit")),
                 optional("seed", integer("random seed of the initial parameters"))});
}

EnergyFitting::EnergyFitting(const nlohmann::ordered_json& config, int64_t ntypes, int64_t in_dim, bool mixed_types,
                             uint64_t seed, at::ScalarType dtype)
    : ntypes_(mixed_types ? 1 : ntypes), dim_case_embd_(config.at("dim_case_embd").get<int64_t>()) {
  if (config.at("numb_fparam").get<int64_t>() != 0 || config.at("numb_aparam").get<int64_t>() != 0)
    fail("model.fitting_net.numb_fparam / numb_aparam are not supported yet");
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const auto widths = config.at("neuron").get<std::vector<int64_t>>();
  nets_.reserve(static_cast<std::size_t>(ntypes_));
  for (int64_t t = 0; t < ntypes_; ++t)
    nets_.emplace_back(in_dim + dim_case_embd_, widths, config.at("resnet_dt").get<bool>(),
                       config.at("activation_function").get<std::string>(), true, 1, dtype, generator);
  if (!config.at("trainable").get<bool>())
    for (auto& net : nets_)
      for (auto& layer : net.layers())
        for (at::Tensor* t : {&layer.matrix, &layer.bias, &layer.idt})
          if (t->defined()) t->set_requires_grad(false);
}

at::Tensor EnergyFitting::forward(const at::Tensor& descriptor, const at::Tensor& atype, int64_t task_case) const {
  at::Tensor input = descriptor;
  if (dim_case_embd_ > 0) {
    if (task_case < 0 || task_case >= dim_case_embd_)
      fail("task index {} outside the fitting net's dim_case_embd {}", task_case, dim_case_embd_);
    at::Tensor one_hot = at::zeros({descriptor.size(0), dim_case_embd_}, descriptor.options());
    one_hot.select(1, task_case).fill_(1.0);
    input = at::cat({descriptor, one_hot}, 1);
  }
  if (ntypes_ == 1) return nets_[0].forward(input).view({-1});
  const RowGroups by_type = group_rows_by_value(atype, ntypes_);
  const std::vector<at::Tensor> inputs = split_row_groups(input, by_type);
  std::vector<at::Tensor> energies;
  for (int64_t t = 0; t < ntypes_; ++t)
    energies.push_back(inputs[t].size(0) == 0 ? at::zeros({0}, input.options()) : nets_[t].forward(inputs[t]).view({-1}));
  return merge_row_groups(energies, by_type);
}

void EnergyFitting::register_into(ParameterList& list, const std::string& prefix) {
  for (int64_t t = 0; t < ntypes_; ++t) nets_[t].register_into(list, prefix + "net." + std::to_string(t) + ".");
}

}  // namespace atomforge::model
