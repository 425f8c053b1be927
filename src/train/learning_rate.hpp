#pragma once
// DeePMD-kit's exponential decay: lr(t) = max(start * r^floor(t/decay_steps), stop), where
// r = (stop/start)^(decay_steps/numb_steps) unless decay_rate is given.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace atomforge::train {

class ExpLearningRate {
 public:
  ExpLearningRate(const nlohmann::ordered_json& config, int64_t numb_steps);
  double at(int64_t step) const;
  double start() const { return start_; }

 private:
  double start_, stop_, rate_;
  int64_t decay_steps_;
};

}  // namespace atomforge::train
