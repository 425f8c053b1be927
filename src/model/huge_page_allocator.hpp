#pragma once
// Above 32 MiB (the most glibc keeps in its heap for reuse: core/allocator.hpp) every block is
// mapped anew and its pages are faulted in and zeroed by the kernel on first touch: a
// message-passing model on 1536 atoms of water (80k edges, 120 MB edge tensors) spent more than
// half its inference time in the kernel's page clearing. Below that, glibc's heap faults each
// 4 KiB page in once, which is still most of a large graph's first step: a 12288-atom DimeNet
// training step (5.4 GB, mostly 2-32 MiB edge tensors) spent 20 s of its first step there.
// Tensors of one huge page (2 MiB) and more go through this allocator instead: mapped with
// transparent huge pages asked for (512 times fewer faults where the kernel's THP mode is
// "madvise" or "always"), and kept when freed for the next tensor of the same size class, so a
// step that repeats the last one's sizes maps nothing new. Their reuse by size class also keeps
// large graphs' peak memory lower than glibc's heap does (the 12288-atom DimeNet step: 3.9
// against 5.7 GB). Cached
// blocks are released as needed so that mapped memory (in use + cached) never exceeds the
// largest amount ever in use at once: peak memory stays what it was without the cache. Nothing is
// returned to the system below that peak until the process ends.
#include <cstddef>

namespace atomforge::model {

// libtorch's CPU tensors of at least huge_page_threshold() bytes from now on; smaller ones as
// before. Once per process (further calls do nothing); a no-op without madvise(MADV_HUGEPAGE).
void map_large_tensors_on_huge_pages();
std::size_t huge_page_threshold();

// Bytes mapped by the allocator: in tensors, cached for reuse, and the most ever in tensors.
struct LargeBlockUsage {
  std::size_t in_use = 0, cached = 0, peak_in_use = 0;
};
LargeBlockUsage large_block_usage();

}  // namespace atomforge::model
