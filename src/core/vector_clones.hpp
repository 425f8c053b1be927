#pragma once
// Element-wise loops that matter for speed are compiled for three x86-64 levels (SSE2, AVX2 + FMA,
// AVX-512) and the best one the CPU runs is chosen when the program loads (GCC's target_clones,
// glibc's ifunc). The project itself is built for the baseline, so that its binaries run anywhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define ATOMFORGE_VECTOR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ATOMFORGE_VECTOR_CLONES
#endif
