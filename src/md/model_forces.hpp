#pragma once
// Energy and forces of an EnergyModel for molecular dynamics, with a Verlet neighbour list: the
// candidate pairs within rcut + skin are found once and reused, each step keeping those within
// rcut, until some atom has moved more than skin/2 since the list was built (then no pair outside
// rcut + skin can have come within rcut).
#include <array>
#include <string>
#include <vector>

#include "graph/neighbor_list.hpp"
#include "md/state.hpp"
#include "model/energy_model.hpp"

namespace atomforge::md {

class ModelForces {
 public:
  // `types` index the model's type map; `box` is used when `pbc`. skin 0 builds the list every step.
  ModelForces(const model::EnergyModel& model, std::string head, std::vector<int32_t> types,
              std::array<double, 9> box, bool pbc, double skin);
  void operator()(State& s);
  int64_t builds() const { return builds_; }
  // Centres whose neighbours of some type exceeded the model's sel, summed over evaluations.
  int64_t truncated_centres() const { return truncated_; }

 private:
  bool list_is_stale(const std::vector<double>& position) const;
  const model::EnergyModel& model_;
  std::string head_;
  std::vector<int32_t> types_;
  std::array<double, 9> box_;
  bool pbc_;
  double skin_;
  graph::NeighborList candidates_;
  std::vector<double> position_at_build_;
  int64_t builds_ = 0, truncated_ = 0;
};

}  // namespace atomforge::md
