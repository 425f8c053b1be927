#include "model/registry.hpp"

#include "core/error.hpp"
#include "model/energy_fitting.hpp"
#include "model/dimenet.hpp"
#include "model/painn.hpp"
#include "model/se_e2_a.hpp"

namespace atomforge::model {

const std::vector<DescriptorEntry>& descriptor_registry() {
  static const std::vector<DescriptorEntry> entries = {
      {"se_e2_a", {"se_a"}, &se_e2_a_schema, &make_se_e2_a},
      {"painn", {}, &painn_schema, &make_painn},
      {"dimenet", {"dimenet++"}, &dimenet_schema, &make_dimenet},
  };
  return entries;
}

void freeze_parameters(Descriptor& descriptor) {
  ParameterList all;
  descriptor.register_into(all, "");
  for (const auto& [name, tensor] : all.parameters()) tensor->set_requires_grad(false);
}

std::vector<config::Field> with_common_descriptor_keys(std::vector<config::Field> fields) {
  using namespace config;
  fields.push_back(defaulted("precision",
                             string("floating point precision of the model", {"float64", "float32", "default"}),
                             "float64"));
  fields.push_back(defaulted("trainable", boolean("whether the descriptor's parameters are trained"), true));
  fields.push_back(optional("seed", integer("random seed of the initial parameters")));
  return fields;
}

const DescriptorEntry& find_descriptor(const std::string& name) {
  for (const auto& entry : descriptor_registry()) {
    if (entry.name == name) return entry;
    for (const auto& alias : entry.aliases)
      if (alias == name) return entry;
  }
  fail("unknown descriptor type '{}'", name);
}

config::Node model_schema() {
  using namespace config;
  std::map<std::string, Node> descriptors;
  std::map<std::string, std::string> aliases;
  for (const auto& entry : descriptor_registry()) {
    descriptors.emplace(entry.name, entry.schema());
    for (const auto& alias : entry.aliases) aliases.emplace(alias, entry.name);
  }
  return object(
      "the model: type map, descriptor and fitting net",
      {required("type_map", array(string("element symbol"), "element of each atom type")),
       required("descriptor", tagged("the descriptor (trunk)", "type", descriptors, "", aliases)),
       defaulted("fitting_net", tagged("the fitting net (head)", "type", {{"ener", energy_fitting_schema()}}, "ener"),
                 json::object()),
       defaulted("type", string("model kind", {"standard"}), "standard"),
       defaulted("data_stat_nbatch", positive(integer("batches per system used for descriptor statistics")), 10),
       defaulted("data_stat_protect", positive(number("lower bound of the statistics' std")), 1e-2)});
}

}  // namespace atomforge::model
