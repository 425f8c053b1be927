#include "train/learning_rate.hpp"

#include <algorithm>
#include <cmath>

namespace atomforge::train {

ExpLearningRate::ExpLearningRate(const nlohmann::ordered_json& config, int64_t numb_steps)
    : start_(config.at("start_lr").get<double>()),
      stop_(config.at("stop_lr").get<double>()),
      decay_steps_(config.at("decay_steps").get<int64_t>()) {
  // As DeePMD-kit: a decay period as long as the run is shortened so the lr still decays.
  if (decay_steps_ >= numb_steps) decay_steps_ = numb_steps / 10 > 100 ? 100 : numb_steps / 100 + 1;
  rate_ = config.contains("decay_rate")
              ? config.at("decay_rate").get<double>()
              : std::pow(stop_ / start_, static_cast<double>(decay_steps_) / static_cast<double>(numb_steps));
}

double ExpLearningRate::at(int64_t step) const {
  return std::max(start_ * std::pow(rate_, static_cast<double>(step / decay_steps_)), stop_);
}

}  // namespace atomforge::train
