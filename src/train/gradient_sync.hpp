#pragma once
// The synchronisations of multi-process training, run after the force double-backward has
// finished (no autograd hooks, so the force graph cannot be cut short as with DDP +
// autograd.grad).
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/communicator.hpp"

namespace atomforge::train {

using model::Communicator;

// Replaces each of `parameters`' gradients by its sum over the ranks of `comm`, reduced in flat
// buckets of at most `bucket_bytes`. A gradient undefined on some ranks but not others counts
// as zero there; a parameter with no gradient anywhere keeps none (the optimiser skips it, as it
// would in one process).
void sum_gradients(const std::vector<at::Tensor*>& parameters, Communicator& comm, int64_t bucket_bytes);

// Gives every rank of `comm` root's values of `tensors` (in place).
void broadcast_values(const std::vector<at::Tensor*>& tensors, Communicator& comm, int root);

// Gives every rank root's `bytes` (any length).
void broadcast_bytes(std::string& bytes, Communicator& comm, int root);

}  // namespace atomforge::train
