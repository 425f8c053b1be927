#pragma once
// The declared schema of a single-task input.json (DeePMD-kit's layout): model, learning_rate,
// loss, training. `atomforge train` resolves the user's file against it and writes the result,
// every default included, to input.resolved.json.
#include "core/config_schema.hpp"

namespace atomforge::train {

config::Node input_schema();
config::Node data_schema(bool validation);

// Reads and resolves `path`; errors name the file and the JSON path of the offending key.
config::json load_input(const std::string& path);

}  // namespace atomforge::train
