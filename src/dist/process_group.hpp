#pragma once
// The ranks of a launch joined into one c10d process group (Gloo: CPU tensors).
#include <memory>

#include "dist/launch.hpp"
#include "model/communicator.hpp"

namespace atomforge::dist {

// Rendezvous (a TCP store hosted by rank 0, or a shared file), then a Gloo process group whose
// collectives fail after `timeout_s` instead of hanging: a rank that died or stalls ends the
// run on every other rank with an error naming the collective. One process needs no launcher.
std::shared_ptr<model::Communicator> connect(const Launch& launch, double timeout_s);

}  // namespace atomforge::dist
