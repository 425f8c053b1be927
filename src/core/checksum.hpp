#pragma once
// A fast 64-bit checksum for detecting damaged files (not an adversary): FNV-1a's xor-multiply
// step over 8-byte words, then over the remaining bytes. Each step is a bijection of the state, so
// any change confined to one word always changes the result. Chain calls through `seed`.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace atomforge {

constexpr uint64_t kChecksumSeed = 0xcbf29ce484222325ULL;

inline uint64_t checksum64(const void* data, std::size_t bytes, uint64_t seed = kChecksumSeed) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * kPrime;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * kPrime;
  return h;
}

}  // namespace atomforge
