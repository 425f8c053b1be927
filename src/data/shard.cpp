#include "data/shard.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace atomforge::data {

FrameRange shard_range(int64_t total, int rank, int world) {
  if (world <= 0 || rank < 0 || rank >= world) fail("shard: rank {} of {} ranks is not one of 0..{}", rank, world, world - 1);
  if (total < 0) fail("shard: {} frames", total);
  // The first total % world ranks take one frame more.
  const int64_t base = total / world, extra = total % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

std::vector<System> shard_systems(const std::vector<System>& systems, int rank, int world) {
  int64_t total = 0;
  for (const System& s : systems) total += s.nframes;
  const FrameRange mine = shard_range(total, rank, world);
  std::vector<System> out;
  int64_t first = 0;  // global number of the system's frame 0
  for (const System& s : systems) {
    const int64_t begin = std::max(mine.begin, first), end = std::min(mine.end, first + s.nframes);
    if (begin < end) out.push_back(frame_slice(s, begin - first, end - first));
    first += s.nframes;
  }
  return out;
}

}  // namespace atomforge::data
