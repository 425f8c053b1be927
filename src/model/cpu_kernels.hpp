#pragma once
// The hand-written kernels read and write host memory through data_ptr, so they take CPU tensors
// only; every function that has one also has the same function composed of libtorch operators,
// which any device runs. GenericKernelsScope sends CPU tensors down that composed path too: the
// tests compare both paths on the CPU, so what a GPU runs is checked on machines without one.
#include <ATen/ATen.h>

#include "core/thread_flag.hpp"

namespace atomforge::model {

using GenericKernelsScope = ThreadFlagScope<struct GenericKernelsTag>;

// True when the hand-written kernel may take these tensors (undefined ones are ignored).
template <typename... Tensors>
bool cpu_kernels_for(const Tensors&... tensors) {
  if (GenericKernelsScope::raised()) return false;
  return ((!tensors.defined() || tensors.device().is_cpu()) && ...);
}

}  // namespace atomforge::model
