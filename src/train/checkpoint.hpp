#pragma once
// Checkpoint files: `<prefix>-<step>.pt` holding the model, the optimiser, the data streams'
// state and the step; `<prefix>.pt` is a symbolic link to the newest; only the newest
// `keep` are kept. Every file is written to a temporary name and renamed.
#include <string>

#include "core/tensor_file.hpp"

namespace atomforge::train {

std::string checkpoint_path(const std::string& dir, const std::string& prefix, int64_t step);
// Writes `file` as step `step`, points `<prefix>.pt` at it and prunes old checkpoints.
void write_checkpoint(const std::string& dir, const std::string& prefix, int64_t step, const TensorFile& file,
                      int keep);

}  // namespace atomforge::train
