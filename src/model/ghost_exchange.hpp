#pragma once
// Message passing over a domain decomposition with ghosts one cut-off deep (as LAMMPS' ML-IAP
// does for message-passing models): a rank's graph holds its owned atoms and the ghosts within
// the cut-off, edges only around owned atoms. A ghost's features, computed here from an incomplete
// neighbourhood, are wrong after every layer, so before each layer but the first they are
// replaced by their owners' (forward exchange); in the backward pass the gradients that reached
// ghost features are added to their owners' (reverse exchange). The caller supplies both (LAMMPS'
// forward and reverse communication); every rank must make the same exchanges in the same order,
// which holds because every rank runs the same layers.
#include <cstdint>
#include <initializer_list>

#include <ATen/ATen.h>

#include "model/model_input.hpp"

namespace atomforge::model {

class GhostExchange {
 public:
  virtual ~GhostExchange() = default;
  // `rows` is (nall, width) row-major, owned atoms first: set every ghost row to its owner's.
  virtual void forward(double* rows, int64_t nall, int64_t width) = 0;
  // Add every ghost row to its owner's row (wherever the owner lives); ghost rows are then unused.
  virtual void reverse(double* rows, int64_t nall, int64_t width) = 0;
};

// Refreshes the ghost rows of the node features `features` (each (nodes, ...), in place) from their
// owners through input.ghost_exchange, in one exchange; nothing without one. Differentiable once
// (inference: the backward is the reverse exchange, itself not differentiable).
void refresh_ghosts(const ModelInput& input, std::initializer_list<at::Tensor*> features);

}  // namespace atomforge::model
