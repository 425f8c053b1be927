#pragma once
// Builds a DataSet from a resolved training_data / validation_data section.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.hpp"

namespace atomforge::train {

// System paths are relative to `base_dir` (the folder of input.json). Every system is read and
// its elements checked against `type_map` here, before any output is written.
data::DataSet load_dataset(const nlohmann::ordered_json& config, const std::string& base_dir,
                           const std::vector<std::string>& type_map, uint64_t seed, const std::string& key_path);

}  // namespace atomforge::train
