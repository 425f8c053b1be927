#pragma once
// DeePMD-kit's 'ener' loss. With p_x(t) = limit_x + (start_x - limit_x) * lr(t)/start_lr:
// L = p_e mean_f(dE^2)/N + p_f mean(dF^2) + p_v mean_f(mean(dW^2))/N; a term is active when
// either of its prefactors is non-zero and the batch has that label. Reported: rmse_e per atom,
// rmse_f over force components, rmse_v per atom, rmse = sqrt(L).
#include <map>
#include <string>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::train {

struct Labels {
  at::Tensor energy;  // (nf) or undefined
  at::Tensor force;   // (nf, nloc, 3) or undefined
  at::Tensor virial;  // (nf, 9) or undefined
};
Labels make_labels(const data::System& system, const std::vector<int64_t>& frames, at::ScalarType dtype);

struct LossValue {
  at::Tensor loss;                        // scalar, differentiable
  std::map<std::string, double> metrics;  // rmse, rmse_e, rmse_f, rmse_v (those active)
};

class EnergyLoss {
 public:
  EnergyLoss(const nlohmann::ordered_json& config, double start_lr);
  LossValue operator()(const model::Prediction& prediction, const Labels& labels, int64_t natoms, double lr) const;
  // Metric names in lcurve order, for this loss's active terms.
  std::vector<std::string> metric_names() const;

 private:
  double start_lr_;
  double start_e_, limit_e_, start_f_, limit_f_, start_v_, limit_v_;
  bool has_e_, has_f_, has_v_;
};

}  // namespace atomforge::train
