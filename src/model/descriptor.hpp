#pragma once
// A descriptor maps the edges around each atom to a per-atom feature vector, differentiably in
// the edge vectors. Descriptors register by name in registry.cpp.
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/config_schema.hpp"
#include "model/model_input.hpp"
#include "model/parameters.hpp"

namespace atomforge::model {

class Descriptor {
 public:
  virtual ~Descriptor() = default;
  virtual NeighborSelection selection() const = 0;
  virtual int64_t output_dim() const = 0;
  // (nframes*nloc, output_dim) features, differentiable w.r.t. input.edge_vec.
  virtual at::Tensor forward(const ModelInput& input) const = 0;
  // Input normalisation from sample batches (DeePMD-kit's davg/dstd); no-op if not needed.
  virtual void compute_statistics(const std::vector<ModelInput>& samples) = 0;
  virtual void register_into(ParameterList& list, const std::string& prefix) = 0;
  // True when the features already tell the elements apart (an element embedding), so one
  // fitting net serves every type (DeePMD-kit's mixed_types); the fitting net's default.
  virtual bool mixed_types() const { return false; }
  // How far an atom's energy sees: rcut for one-hop descriptors, layers x rcut for message
  // passing (what a domain decomposition must provide as ghost atoms).
  virtual double receptive_field() const { return selection().rcut; }
  // True when forward() computes only its share of the work for an input with a partition
  // (graph parallelism); others compute everything and must not be given one.
  virtual bool splits_graph() const { return false; }
  // True when a centre's features depend only on its type and the edges in its slot_index row:
  // then inference may evaluate a block of centres at a time (centre_blocks.hpp).
  virtual bool per_centre() const { return false; }
  // Descriptors that refresh ghost node features between layers (ghost_exchange.hpp; then ghosts
  // one cut-off deep suffice): the exchanges one forward pass makes and the values per atom each
  // carries. width 0: not supported (ghosts must reach receptive_field()).
  struct GhostExchanges {
    int64_t count = 0, width = 0;
  };
  virtual GhostExchanges ghost_exchanges() const { return {}; }
};

// Stops training every parameter `descriptor` registers (its config's trainable: false).
void freeze_parameters(Descriptor& descriptor);

// The keys every descriptor's schema ends with: precision, trainable, seed.
std::vector<config::Field> with_common_descriptor_keys(std::vector<config::Field> fields);

}  // namespace atomforge::model
