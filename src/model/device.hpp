#pragma once
// A device named in an input file or on a command line ("cpu", "cuda", "cuda:1"), checked against
// what this LibTorch and machine have, so that a wrong name fails at start-up with the key that
// named it rather than deep inside the first step.
#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace atomforge::model {

// "cuda" without an index is GPU `rank` modulo the visible ones: one per process when the
// launcher gives each process its own (CUDA_VISIBLE_DEVICES), the node's GPUs round robin when it
// shows them all. `where` names the key or option in errors.
at::Device resolve_device(const std::string& name, const std::string& where, int64_t rank = 0);

}  // namespace atomforge::model
