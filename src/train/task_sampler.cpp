#include "train/task_sampler.hpp"

#include "data/dataset.hpp"

namespace atomforge::train {

int64_t draw_task(uint64_t seed, int64_t step, const std::vector<double>& weights) {
  constexpr uint64_t kTaskStream = 0x7461736bULL;  // keeps task draws apart from the data streams
  if (weights.size() <= 1) return 0;
  const double u = data::uniform01(data::splitmix64(seed ^ kTaskStream) + static_cast<uint64_t>(step));
  double cumulative = 0;
  for (std::size_t k = 0; k < weights.size(); ++k) {
    cumulative += weights[k];
    if (u < cumulative) return static_cast<int64_t>(k);
  }
  return static_cast<int64_t>(weights.size()) - 1;
}

}  // namespace atomforge::train
