#include "model/huge_page_allocator.hpp"

#include <mutex>
#include <new>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace atomforge::model {

namespace {

constexpr std::size_t kThreshold = 32 << 20;  // glibc's largest mmap threshold on 64-bit systems

#if defined(__linux__) && defined(MADV_HUGEPAGE)
constexpr std::size_t kHugePage = 2 << 20;

// Large blocks are mapped here and remembered by address, so that one plain deleter (what
// raw_deleter() must give) frees both kinds: mapped blocks here, others through the allocator
// this one wraps.
class HugePageAllocator final : public c10::Allocator {
 public:
  explicit HugePageAllocator(c10::Allocator* fallback) {
    fallback_ = fallback;
    fallback_deleter_ = fallback->raw_deleter();
  }

  c10::DataPtr allocate(std::size_t bytes) const override {
    if (bytes < kThreshold) return fallback_->allocate(bytes);
    const std::size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, mapped, MADV_HUGEPAGE);  // advice only: without THP it changes nothing
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      mapped_[p] = mapped;
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  static void release(void* p) {
    std::size_t mapped = 0;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto it = mapped_.find(p);
      if (it != mapped_.end()) {
        mapped = it->second;
        mapped_.erase(it);
      }
    }
    if (mapped > 0)
      munmap(p, mapped);
    else
      fallback_deleter_(p);
  }

  static inline c10::Allocator* fallback_ = nullptr;
  static inline c10::DeleterFnPtr fallback_deleter_ = nullptr;
  static inline std::mutex mutex_;
  static inline std::unordered_map<void*, std::size_t> mapped_;
};
#endif

}  // namespace

std::size_t huge_page_threshold() { return kThreshold; }

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
