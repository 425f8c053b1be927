#pragma once
// What several verbs share about model and checkpoint files: which head a command works on,
// what kind of file it is, and the systems a command reads.
#include <string>
#include <vector>

#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::cli {

// "A, B, C": the model's heads, for error messages.
std::string head_list(const model::EnergyModel& model);

// The head a command works on: `requested` when given (an error naming the known heads when the
// model has no such head), else the only head; a multi-head model without `requested` is an error
// that lists the heads and names `option`, the flag that chooses one. `source` names the file.
std::string choose_head(const model::EnergyModel& model, const std::string& requested, const std::string& source,
                        const std::string& option);

// "checkpoint" or "model" from meta.kind; any other kind is returned as stored.
std::string file_kind(const TensorFile& file);

// Every system under each path (npy system, folder of systems, extxyz), in order.
std::vector<data::System> load_all_systems(const std::vector<std::string>& paths);

}  // namespace atomforge::cli
