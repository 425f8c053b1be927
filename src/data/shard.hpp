#pragma once
// Sharded reads for distributed training: rank r of `world` gets a disjoint share of the frames.
// The frames of all systems are numbered in order (system 0's first) and cut into `world`
// contiguous ranges whose sizes differ by at most one, so each rank reads one contiguous part of a
// packed store and every frame belongs to exactly one rank.
#include <cstdint>
#include <vector>

#include "data/system.hpp"

namespace atomforge::data {

struct FrameRange {
  int64_t begin = 0, end = 0;  // frames begin .. end-1
};

// Rank `rank`'s range of `total` frames numbered 0 .. total-1.
FrameRange shard_range(int64_t total, int rank, int world);

// Rank `rank`'s share as systems: the parts of `systems` that fall in its range (views of stored
// systems, copies of resident ones), in order. Empty when there are fewer frames than ranks and
// this rank gets none.
std::vector<System> shard_systems(const std::vector<System>& systems, int rank, int world);

}  // namespace atomforge::data
