#pragma once
#include <cstdint>

// Element-wise loops that matter for speed are compiled for three x86-64 levels (SSE2, AVX2 + FMA,
// AVX-512) and the best one the CPU runs is chosen when the program loads (GCC's target_clones,
// glibc's ifunc). The project itself is built for the baseline, so that its binaries run anywhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define ATOMFORGE_VECTOR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ATOMFORGE_VECTOR_CLONES
#endif

namespace atomforge {

// sum_k a[k] b[k] in eight independent partial sums, so that the compiler vectorises it (it may
// not reorder a single running sum without -ffast-math); the order is fixed, so the result is
// reproducible.
template <typename T>
inline T dot_in_lanes(const T* a, const T* b, int64_t m) {
  constexpr int64_t kLanes = 8;
  T partial[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= m; k += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += a[k + l] * b[k + l];
  T sum = 0;
  for (; k < m; ++k) sum += a[k] * b[k];
  for (int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

}  // namespace atomforge
