#include "train/head_groups.hpp"

#include <cmath>
#include <numeric>

#include "core/error.hpp"

namespace atomforge::train {

std::vector<RankRange> head_groups(const std::vector<double>& weights, int world) {
  const int n = static_cast<int>(weights.size());
  if (n == 0) fail("head groups: no tasks");
  if (world < n)
    fail("training.parallel.heads 'distributed' needs at least one rank per task: {} tasks, {} ranks", n, world);
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> ideal(n);
  std::vector<int> size(n);
  for (int t = 0; t < n; ++t) {
    ideal[t] = weights[t] / total * world;
    size[t] = std::max(1, static_cast<int>(std::floor(ideal[t])));
  }
  // Every task holds a rank, so the floors may overshoot: take from the most over-served first;
  // then give what is left to the most under-served.
  int assigned = std::accumulate(size.begin(), size.end(), 0);
  while (assigned > world) {
    int best = -1;
    for (int t = 0; t < n; ++t)
      if (size[t] > 1 && (best < 0 || size[t] - ideal[t] > size[best] - ideal[best])) best = t;
    --size[best];
    --assigned;
  }
  while (assigned < world) {
    int best = 0;
    for (int t = 1; t < n; ++t)
      if (ideal[t] - size[t] > ideal[best] - size[best]) best = t;
    ++size[best];
    ++assigned;
  }
  std::vector<RankRange> groups(n);
  int begin = 0;
  for (int t = 0; t < n; ++t) {
    groups[t] = {begin, begin + size[t]};
    begin += size[t];
  }
  return groups;
}

}  // namespace atomforge::train
