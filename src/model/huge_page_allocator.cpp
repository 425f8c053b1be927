#include "model/huge_page_allocator.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include <c10/core/CPUAllocator.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace atomforge::model {

namespace {

constexpr std::size_t kThreshold = 2 << 20;  // one transparent huge page

// Guarded by mutex(); zero until the allocator is installed.
LargeBlockUsage usage;
std::mutex& mutex() {
  static std::mutex m;
  return m;
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
constexpr std::size_t kHugePage = 2 << 20;

// Sizes are rounded up to a class: a multiple of 2 MiB and of 1/16 of the size's power of two
// (at most ~6 % more), so that the same tensor a step later, a few edges larger or smaller,
// fits the block the last step freed.
std::size_t size_class(std::size_t bytes) {
  std::size_t power = kHugePage;
  while (power * 2 <= bytes) power *= 2;
  const std::size_t step = std::max(kHugePage, power / 16);
  return (bytes + step - 1) / step * step;
}

// Blocks are remembered by address, so that one plain deleter (what raw_deleter() must give)
// frees both kinds: large blocks here, others through the allocator this one wraps.
class HugePageAllocator final : public c10::Allocator {
 public:
  explicit HugePageAllocator(c10::Allocator* fallback) {
    fallback_ = fallback;
    fallback_deleter_ = fallback->raw_deleter();
  }

  // LibTorch 2.3 made allocate non-const and added a pure copy_data: both spellings of each are
  // declared (without `override`), so that whichever the base class has is overridden.
  c10::DataPtr allocate(std::size_t bytes) { return std::as_const(*this).allocate(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DataPtr allocate(std::size_t bytes) const {
    if (bytes < kThreshold) return fallback_->allocate(bytes);
    const std::size_t size = size_class(bytes);
    void* p = take_cached(size);
    if (p == nullptr) {
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP it changes nothing
    }
    const std::lock_guard<std::mutex> lock(mutex());
    live_[p] = size;
    usage.in_use += size;
    usage.peak_in_use = std::max(usage.peak_in_use, usage.in_use);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  // A cached block of exactly `size`, or null after releasing cached blocks (largest first) until
  // mapping `size` more keeps in use + cached within the peak in use (counting this request).
  static void* take_cached(std::size_t size) {
    std::vector<std::pair<void*, std::size_t>> unmap;
    {
      const std::lock_guard<std::mutex> lock(mutex());
      const auto it = cache_.find(size);
      if (it != cache_.end()) {
        void* p = it->second;
        cache_.erase(it);
        usage.cached -= size;
        return p;
      }
      const std::size_t limit = std::max(usage.peak_in_use, usage.in_use + size);
      while (!cache_.empty() && usage.in_use + usage.cached + size > limit) {
        const auto largest = std::prev(cache_.end());
        unmap.emplace_back(largest->second, largest->first);
        usage.cached -= largest->first;
        cache_.erase(largest);
      }
    }
    for (const auto& [p, bytes] : unmap) munmap(p, bytes);
    return nullptr;
  }

  static void release(void* p) {
    {
      const std::lock_guard<std::mutex> lock(mutex());
      const auto it = live_.find(p);
      if (it != live_.end()) {
        cache_.emplace(it->second, p);
        usage.in_use -= it->second;
        usage.cached += it->second;
        live_.erase(it);
        return;
      }
    }
    fallback_deleter_(p);
  }

  static inline c10::Allocator* fallback_ = nullptr;
  static inline c10::DeleterFnPtr fallback_deleter_ = nullptr;
  static inline std::unordered_map<void*, std::size_t> live_;
  static inline std::multimap<std::size_t, void*> cache_;
};
#endif

}  // namespace

std::size_t huge_page_threshold() { return kThreshold; }

LargeBlockUsage large_block_usage() {
  const std::lock_guard<std::mutex> lock(mutex());
  return usage;
}

void map_large_tensors_on_huge_pages() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static std::once_flag once;
  std::call_once(once, [] {
    c10::Allocator* current = c10::GetCPUAllocator();
    // A wrapped allocator without a plain deleter could not free its own blocks through ours.
    if (current->raw_deleter() == nullptr) return;
    // Owned by c10 from here on (SetCPUAllocator's contract); priority above the default's 0.
    c10::SetCPUAllocator(new HugePageAllocator(current), /*priority=*/1);
  });
#endif
}

}  // namespace atomforge::model
