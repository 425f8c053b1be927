#pragma once
// A one-frame ModelInput from a candidate pair list found earlier with a larger cut-off (molecular
// dynamics keeps one list for many steps, with a skin): only candidates now within the model's
// cut-off become edges, with the same selection and padding as build_model_input.
#include "graph/neighbor_list.hpp"
#include "model/model_input.hpp"

namespace atomforge::model {

// `candidates` must hold every pair within selection.rcut at `coord` (its shifts refer to these
// coordinates, unwrapped); pairs beyond the cut-off are dropped.
ModelInput build_model_input_from_pairs(const double* coord, const double* box, bool pbc,
                                        const std::vector<int32_t>& types, const graph::NeighborList& candidates,
                                        const NeighborSelection& selection, at::ScalarType dtype);

}  // namespace atomforge::model
