#include "distill/label.hpp"

#include <algorithm>

namespace atomforge::distill {

namespace {

void append(std::vector<double>& to, const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kDouble).contiguous().view({-1});
  to.insert(to.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

Predictions predict(const model::EnergyModel& model, const std::string& head, const data::System& system,
                    int64_t chunk) {
  Predictions p;
  for (int64_t begin = 0; begin < system.nframes; begin += chunk) {
    std::vector<int64_t> frames;
    for (int64_t f = begin; f < std::min(system.nframes, begin + chunk); ++f) frames.push_back(f);
    const model::Prediction out = model.evaluate(model.prepare(system, frames), head, false);
    append(p.energy, out.energy);
    append(p.force, out.force);
    append(p.virial, out.virial);
  }
  return p;
}

void label(const model::EnergyModel& teacher, const std::string& head, data::System& system, int64_t chunk) {
  Predictions p = predict(teacher, head, system, chunk);
  system.energy = std::move(p.energy);
  system.force = std::move(p.force);
  system.virial = std::move(p.virial);
}

}  // namespace atomforge::distill
