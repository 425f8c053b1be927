#pragma once
// Work split into as many even parts as threads, each part's partial sums kept apart and added
// in part order afterwards: the parts depend on the sizes and the thread count only, so the sums
// are reproducible run to run (at::parallel_for's chunks depend on its grain and scheduling).
#include <cstdint>

#include <ATen/Parallel.h>

namespace atomforge::model {

// Runs fn(part, first item, end item) for parts 0 .. parts - 1 of `items`, split evenly.
template <typename F>
void for_each_part(int64_t items, int64_t parts, const F& fn) {
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) fn(s, items * s / parts, items * (s + 1) / parts);
  });
}

}  // namespace atomforge::model
