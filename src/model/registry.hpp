#pragma once
// Descriptors by name. Adding one: write its file (schema + factory), add one line to the list in
// registry.cpp (see docs/adding-a-model.md).
#include <memory>
#include <string>
#include <vector>

#include "core/config_schema.hpp"
#include "model/descriptor.hpp"

namespace atomforge::model {

struct DescriptorEntry {
  std::string name;
  std::vector<std::string> aliases;
  config::Node (*schema)();
  std::unique_ptr<Descriptor> (*make)(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map,
                                      uint64_t seed, at::ScalarType dtype);
};

const std::vector<DescriptorEntry>& descriptor_registry();
const DescriptorEntry& find_descriptor(const std::string& name);

// The `model` section of input.json (single task).
config::Node model_schema();

}  // namespace atomforge::model
