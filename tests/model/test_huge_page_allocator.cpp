// libtorch's CPU allocator after map_large_tensors_on_huge_pages(): tensors at the threshold and
// above live in mappings the kernel was asked to back with huge pages (VmFlags "hg" in
// /proc/self/smaps), smaller ones do not; values survive, blocks from before the switch and
// through the raw interface are freed by the right deleter, and many cycles leak no mapping.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include "model/huge_page_allocator.hpp"

namespace atomforge::model {
namespace {

struct Mapping {
  bool found = false;
  bool huge_page_advice = false;
};

// The /proc/self/smaps entry holding address p.
Mapping mapping_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  Mapping out;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-') {
      if (inside) break;  // the next mapping's header
      inside = address >= begin && address < end;
      out.found = out.found || inside;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      out.huge_page_advice = line.find(" hg") != std::string::npos;
    }
  }
  return out;
}

bool have_smaps() { return std::ifstream("/proc/self/smaps").good(); }

// kB mapped with huge-page advice (sizes, not mappings: the kernel merges adjacent ones).
int64_t advised_kb() {
  std::ifstream smaps("/proc/self/smaps");
  int64_t total = 0, size = 0;
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind("Size:", 0) == 0) size = std::stoll(line.substr(5));
    if (line.rfind("VmFlags:", 0) == 0 && line.find(" hg") != std::string::npos) total += size;
  }
  return total;
}

TEST(HugePageAllocator, LargeTensorsGetHugePageAdviceSmallOnesDoNot) {
  if (!have_smaps()) GTEST_SKIP() << "no /proc/self/smaps";
  const at::Tensor before = at::arange(static_cast<int64_t>(huge_page_threshold() / sizeof(double)) + 7, at::kDouble);
  map_large_tensors_on_huge_pages();
  map_large_tensors_on_huge_pages();  // once per process: a second call changes nothing

  const int64_t large = static_cast<int64_t>(huge_page_threshold() / sizeof(double));
  at::Tensor big = at::arange(large, at::kDouble);
  EXPECT_TRUE(mapping_of(big.data_ptr()).huge_page_advice);
  EXPECT_EQ(big[large - 1].item<double>(), static_cast<double>(large - 1));
  EXPECT_EQ((big * 2).sum().item<double>(), static_cast<double>(large) * static_cast<double>(large - 1));

  const at::Tensor small = at::ones({1000}, at::kDouble);
  EXPECT_FALSE(mapping_of(small.data_ptr()).huge_page_advice);
  // The block allocated before the switch still reads and frees through its own deleter.
  EXPECT_EQ(before[5].item<double>(), 5.0);
}

// What the kernel has mapped with huge-page advice is what the allocator says it holds.
void expect_mapped_matches_usage() {
  const LargeBlockUsage u = large_block_usage();
  EXPECT_EQ(advised_kb() * 1024, static_cast<int64_t>(u.in_use + u.cached));
  EXPECT_LE(u.in_use + u.cached, u.peak_in_use);
}

TEST(HugePageAllocator, RawInterfaceWorksForBothKinds) {
  map_large_tensors_on_huge_pages();
  c10::Allocator* allocator = c10::GetCPUAllocator();
  for (const std::size_t bytes : {std::size_t{64}, huge_page_threshold() + 12345}) {
    void* p = allocator->raw_allocate(bytes);
    static_cast<char*>(p)[bytes - 1] = 1;
    allocator->raw_deallocate(p);
  }
}

TEST(HugePageAllocator, FreedBlocksServeTheNextTensorOfTheirSizeClass) {
  if (!have_smaps()) GTEST_SKIP() << "no /proc/self/smaps";
  map_large_tensors_on_huge_pages();
  const int64_t large = static_cast<int64_t>(huge_page_threshold()) + 4096;
  void* first = nullptr;
  {
    const at::Tensor t = at::empty({large}, at::kByte).fill_(1);
    first = t.data_ptr();
  }
  const int64_t kb_after_first = advised_kb();
  for (int k = 0; k < 50; ++k) {
    // A few bytes more or less each time, as an edge array from one MD step to the next.
    at::Tensor t = at::empty({large + (k % 5) * 1000 - 2000}, at::kByte).fill_(k);
    ASSERT_EQ(t.data_ptr(), first) << "cycle " << k;
    ASSERT_EQ(advised_kb(), kb_after_first) << "cycle " << k;  // nothing mapped anew
    ASSERT_EQ(t[t.numel() - 1].item<uint8_t>(), k);
  }
  expect_mapped_matches_usage();
}

TEST(HugePageAllocator, MappedMemoryNeverExceedsThePeakInUse) {
  if (!have_smaps()) GTEST_SKIP() << "no /proc/self/smaps";
  map_large_tensors_on_huge_pages();
  const int64_t mib = 1 << 20;
  // Sizes in use at once rise and fall and change class; freed blocks that fit nothing must give
  // way rather than add to the mapped total.
  for (int round = 0; round < 3; ++round)
    for (const int64_t a : {40, 100, 70, 300, 45})
      for (const int64_t b : {60, 35, 250}) {
        const at::Tensor x = at::empty({a * mib}, at::kByte).fill_(1);
        const at::Tensor y = at::empty({b * mib}, at::kByte).fill_(2);
        expect_mapped_matches_usage();
        ASSERT_EQ(x[a * mib - 1].item<uint8_t>(), 1);
        ASSERT_EQ(y[b * mib - 1].item<uint8_t>(), 2);
      }
  expect_mapped_matches_usage();
}

}  // namespace
}  // namespace atomforge::model
