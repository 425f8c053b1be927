#pragma once
// Which task a multi-task step trains (DeePMD-kit's model_prob): a pure function of the seed and
// the step, so a restarted run draws exactly the tasks the uninterrupted one would have.
#include <cstdint>
#include <vector>

namespace atomforge::train {

// Index into `weights` (normalised, summing to 1) drawn for `step`.
int64_t draw_task(uint64_t seed, int64_t step, const std::vector<double>& weights);

}  // namespace atomforge::train
