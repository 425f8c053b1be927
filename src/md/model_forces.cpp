#include "md/model_forces.hpp"

#include <cmath>
#include <utility>

#include "core/error.hpp"
#include "model/model_input_from_pairs.hpp"

namespace atomforge::md {

ModelForces::ModelForces(const model::EnergyModel& model, std::string head, std::vector<int32_t> types,
                         std::array<double, 9> box, bool pbc, double skin)
    : model_(model), head_(std::move(head)), types_(std::move(types)), box_(box), pbc_(pbc), skin_(skin) {
  if (!(skin >= 0) || !std::isfinite(skin)) fail("the neighbour list skin must be >= 0, got {}", skin);
}

bool ModelForces::list_is_stale(const std::vector<double>& position) const {
  if (builds_ == 0 || skin_ == 0 || position_at_build_.size() != position.size()) return true;
  const double limit2 = 0.25 * skin_ * skin_;
  for (std::size_t i = 0; i < position.size(); i += 3) {
    double d2 = 0;
    for (int d = 0; d < 3; ++d) {
      const double dx = position[i + d] - position_at_build_[i + d];
      d2 += dx * dx;
    }
    if (d2 > limit2) return true;
  }
  return false;
}

void ModelForces::operator()(State& s) {
  const model::NeighborSelection selection = model_.selection();
  const double* box = pbc_ ? box_.data() : nullptr;
  if (list_is_stale(s.position)) {
    candidates_ = graph::build_neighbor_list(s.position.data(), s.natoms(), box, {pbc_, pbc_, pbc_},
                                             selection.rcut + skin_);
    position_at_build_ = s.position;
    ++builds_;
  }
  const model::ModelInput input = model::build_model_input_from_pairs(s.position.data(), box, pbc_, types_, candidates_,
                                                                      selection, model_.dtype());
  truncated_ += input.truncated_centres;
  const model::Prediction p = model_.evaluate(input, head_, false);
  s.potential_energy = p.energy.to(at::kDouble).item<double>();
  const at::Tensor f = p.force.detach().to(at::kDouble).contiguous().view({-1});
  s.force.assign(f.data_ptr<double>(), f.data_ptr<double>() + f.numel());
}

}  // namespace atomforge::md
