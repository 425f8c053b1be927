#pragma once
// Above 32 MiB (the most glibc keeps in its heap for reuse: core/allocator.hpp) every block is
// mapped anew in 4 KiB pages that fault in on first touch: a message-passing model on 1536 atoms
// of water (80k edges, 120 MB edge tensors) spent about half its inference time there. Tensors
// that large are mapped with transparent huge pages asked for instead: 512 times fewer faults
// where the kernel's THP mode is "madvise" or "always"; the same pages as before where it is
// "never". Peak memory is unchanged.
#include <cstddef>

namespace atomforge::model {

// libtorch's CPU tensors of at least huge_page_threshold() bytes from now on; smaller ones as
// before. Once per process (further calls do nothing); a no-op without madvise(MADV_HUGEPAGE).
void map_large_tensors_on_huge_pages();
std::size_t huge_page_threshold();

}  // namespace atomforge::model
