#pragma once
// glibc hands blocks above its mmap threshold (128 KiB, raised on the fly up to 32 MiB) straight
// to the kernel and returns them on free, so every large tensor of every training step comes back
// as fresh pages that fault in on first touch: about a third of an se_e2_a water step (192 atoms,
// 13 MB embedding tensors) went to page faults and zeroing. Keeping freed memory in the heap for
// reuse removes that cost; peak memory stays the same, but it is not returned to the system
// until the process ends.
namespace atomforge {

// Raises glibc's mmap and trim thresholds to their maximum (32 MiB; larger blocks still map).
// Does nothing when the user tunes malloc through the environment (GLIBC_TUNABLES mentioning
// malloc, or MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_) or on a C library other than glibc.
void keep_freed_memory_for_reuse();

}  // namespace atomforge
