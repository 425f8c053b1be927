#pragma once
// Multi-task head parallelism (HydraGNN): the ranks split into one group of contiguous ranks per
// task, sizes in proportion to the tasks' weights, at least one rank each.
#include <vector>

namespace atomforge::train {

struct RankRange {
  int begin = 0, end = 0;  // [begin, end)
  int size() const { return end - begin; }
  bool contains(int rank) const { return rank >= begin && rank < end; }
};

// Largest remainder apportionment of `world` ranks to `weights` (ties to the earlier task);
// an error when there are fewer ranks than tasks.
std::vector<RankRange> head_groups(const std::vector<double>& weights, int world);

}  // namespace atomforge::train
