#include "train/energy_loss.hpp"

#include <cmath>

namespace atomforge::train {

Labels make_labels(const data::System& system, const std::vector<int64_t>& frames, at::ScalarType dtype) {
  const int64_t nf = static_cast<int64_t>(frames.size()), nloc = system.natoms();
  auto gather = [&](const double* (data::System::*frame)(int64_t) const, int64_t per_frame) {
    std::vector<double> out;
    out.reserve(frames.size() * per_frame);
    for (int64_t f : frames) out.insert(out.end(), (system.*frame)(f), (system.*frame)(f) + per_frame);
    return at::from_blob(out.data(), {static_cast<int64_t>(out.size())}, at::kDouble).to(dtype).clone();
  };
  Labels labels;
  if (system.has_energy()) labels.energy = gather(&data::System::frame_energy, 1);
  if (system.has_force()) labels.force = gather(&data::System::frame_force, nloc * 3).view({nf, nloc, 3});
  if (system.has_virial()) labels.virial = gather(&data::System::frame_virial, 9).view({nf, 9});
  return labels;
}

EnergyLoss::EnergyLoss(const nlohmann::ordered_json& config, double start_lr)
    : start_lr_(start_lr),
      start_e_(config.at("start_pref_e").get<double>()),
      limit_e_(config.at("limit_pref_e").get<double>()),
      start_f_(config.at("start_pref_f").get<double>()),
      limit_f_(config.at("limit_pref_f").get<double>()),
      start_v_(config.at("start_pref_v").get<double>()),
      limit_v_(config.at("limit_pref_v").get<double>()),
      has_e_(start_e_ != 0.0 || limit_e_ != 0.0),
      has_f_(start_f_ != 0.0 || limit_f_ != 0.0),
      has_v_(start_v_ != 0.0 || limit_v_ != 0.0) {}

std::vector<std::string> EnergyLoss::metric_names() const {
  std::vector<std::string> names{"rmse"};
  if (has_e_) names.push_back("rmse_e");
  if (has_f_) names.push_back("rmse_f");
  if (has_v_) names.push_back("rmse_v");
  return names;
}

LossValue EnergyLoss::operator()(const model::Prediction& prediction, const Labels& labels, int64_t natoms,
                                 double lr) const {
  const double ratio = lr / start_lr_;
  const double atom_norm = 1.0 / static_cast<double>(natoms);
  LossValue out;
  // Labels are read on the host; the training prediction is on the model's device.
  at::Tensor loss = at::zeros({}, prediction.energy.options());
  if (has_e_ && labels.energy.defined()) {
    const at::Tensor l2 = (prediction.energy - labels.energy.to(prediction.energy.device())).square().mean();
    loss = loss + (limit_e_ + (start_e_ - limit_e_) * ratio) * atom_norm * l2;
    out.metrics["rmse_e"] = std::sqrt(l2.item<double>()) * atom_norm;
  }
  if (has_f_ && labels.force.defined()) {
    const at::Tensor l2 = (prediction.force - labels.force.to(prediction.force.device())).square().mean();
    loss = loss + (limit_f_ + (start_f_ - limit_f_) * ratio) * l2;
    out.metrics["rmse_f"] = std::sqrt(l2.item<double>());
  }
  if (has_v_ && labels.virial.defined()) {
    const at::Tensor l2 = (prediction.virial - labels.virial.to(prediction.virial.device())).square().mean();
    loss = loss + (limit_v_ + (start_v_ - limit_v_) * ratio) * atom_norm * l2;
    out.metrics["rmse_v"] = std::sqrt(l2.item<double>()) * atom_norm;
  }
  out.metrics["rmse"] = std::sqrt(loss.item<double>());
  out.loss = loss;
  return out;
}

}  // namespace atomforge::train
