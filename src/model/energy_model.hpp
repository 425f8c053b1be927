#pragma once
// The energy model: one descriptor (the trunk) and one or more heads. A head is a fitting net
// (its own, or one shared by several heads with a one-hot task input) plus its own per-type
// energy bias; data sets labelled by different methods each get a head. Energy is the sum of
// atomic energies; forces F = -dE/dr and the virial W = -sum_edges dE/dr_ij (x) r_ij come from
// one autograd pass over the edge vectors (kept differentiable when training on forces).
//
// The model config is canonical: {type_map, descriptor, fitting_nets: {key: config},
// heads: {name: {fitting: key, case: index}}, data_stat_nbatch, ...}; single_task_config()
// turns DeePMD-kit's single-task `model` section into it (one head named "default").
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/descriptor.hpp"
#include "model/energy_fitting.hpp"
#include "model/model_input.hpp"

namespace atomforge::model {

// Per-atom arrays are per frame for frames of one size, (atoms, ...) otherwise (concatenate()).
struct Prediction {
  at::Tensor energy;       // (nframes)
  at::Tensor force;        // (nframes, nall, 3); nall = nloc without ghosts
  at::Tensor virial;       // (nframes, 9)
  at::Tensor atom_energy;  // (nframes, nloc), or (nframes, nowned) for inputs with nowned
  // (nframes, nall, 9), only when evaluated without create_graph: each edge's virial
  // -dE/dr_ij (x) r_ij split evenly between its two atoms (LAMMPS' convention for pair terms;
  // DeePMD-kit gives all of it to the neighbour). They sum to `virial`.
  at::Tensor atom_virial;
};

class EnergyModel {
 public:
  static constexpr const char* kDefaultHead = "default";

  // `config` is canonical (see above); `default_seed` seeds parts that name no seed.
  EnergyModel(nlohmann::ordered_json config, uint64_t default_seed);
  static nlohmann::ordered_json single_task_config(const nlohmann::ordered_json& resolved_model_section);

  const std::vector<std::string>& heads() const { return head_names_; }
  bool has_head(const std::string& head) const;
  // Inputs on another device than the model's are moved to it. Training evaluations
  // (create_graph) return their arrays on the model's device; inference returns them on the host,
  // where every caller reads them.
  Prediction evaluate(const ModelInput& input, const std::string& head, bool create_graph) const;
  // Without create_graph, per-centre descriptors are evaluated a block of centres at a time, each
  // block centring at most this many edges (centre_blocks.hpp); 0: the whole input at once.
  static constexpr int64_t kInferenceBlockEdges = 32768;
  void set_inference_block_edges(int64_t edges) { inference_block_edges_ = edges; }
  // Without create_graph, inputs with more edges than this evaluate message-passing descriptors
  // that can (DimeNet) one layer's activations at a time, running each layer again in the force
  // pass (recompute.hpp): a third to a half of the memory for one more forward pass. 0: never.
  // The environment variable ATOMFORGE_RECOMPUTE_EDGES, when set, replaces the default (for the
  // drivers that do not call the setter: md, test, LAMMPS, the C API).
  static constexpr int64_t kRecomputeLayerEdges = int64_t{1} << 17;
  static int64_t default_recompute_layer_edges();
  void set_recompute_layer_edges(int64_t edges) { recompute_layer_edges_ = edges; }
  int64_t recompute_layer_edges() const { return recompute_layer_edges_; }
  // The model's only head; an error naming the heads when there are several.
  Prediction evaluate(const ModelInput& input, bool create_graph) const;
  const std::string& only_head() const;
  ModelInput prepare(const data::System& system, const std::vector<int64_t>& frames) const;
  ModelInput prepare(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                     int64_t nframes) const;
  // One frame whose atoms after the first `nlocal` are neighbours only (build_local_model_input).
  ModelInput prepare_local(const double* coord, int64_t nlocal, const std::vector<int32_t>& types) const;
  // As prepare_local with ghosts one cut-off deep whose features `exchange` refreshes between
  // layers (ghost_exchange.hpp); only for descriptors with ghost_exchanges().width > 0.
  ModelInput prepare_exchange(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                              std::shared_ptr<GhostExchange> exchange) const;

  // Descriptor statistics from up to data_stat_nbatch x batch_size frames of each system.
  void compute_statistics(const std::vector<data::System>& systems, const std::vector<int64_t>& batch_sizes);
  // A head's out_bias by least squares (minimum norm) of frame energies on per-type atom counts;
  // with `residual`, of label minus the head's current prediction (fine-tuning re-fit).
  void fit_out_bias(const std::string& head, const std::vector<data::System>& systems, bool residual = false);
  void fit_out_bias(const std::vector<data::System>& systems) { fit_out_bias(only_head(), systems); }

  const nlohmann::ordered_json& config() const { return config_; }
  const std::vector<std::string>& type_map() const { return type_map_; }
  double rcut() const { return descriptor_->selection().rcut; }
  // How far an atom's energy reaches: atoms beyond it do not change it. rcut for one-hop
  // descriptors, layers x rcut for message passing; a domain needs ghost atoms this deep.
  double receptive_field() const { return descriptor_->receptive_field(); }
  NeighborSelection selection() const { return descriptor_->selection(); }
  bool splits_graph() const { return descriptor_->splits_graph(); }
  Descriptor::GhostExchanges ghost_exchanges() const { return descriptor_->ghost_exchanges(); }
  at::ScalarType dtype() const { return dtype_; }
  // Where the parameters live and the model runs: the host until moved (after statistics and
  // bias fits, which read the data on the host). Saving and loading work from any device.
  void to(at::Device device);
  at::Device device() const { return device_; }
  ParameterList& parameters() { return parameters_; }
  const ParameterList& parameters() const { return parameters_; }
  at::Tensor& out_bias(const std::string& head);
  at::Tensor& out_bias() { return out_bias(only_head()); }
  // A single-head model holding `head` of this one (same trunk, fitting net and bias).
  std::unique_ptr<EnergyModel> extract_head(const std::string& head) const;
  // This model with `added` elements appended to its type map (fine-tuning on new elements):
  // the trunk's element embedding already has their rows; an error for per-element descriptors.
  std::unique_ptr<EnergyModel> with_elements(const std::vector<std::string>& added, uint64_t seed) const;

  // Self-describing: format, type map, cut-off, precision, the model config and every array.
  void save(TensorFile& file) const;
  static std::unique_ptr<EnergyModel> load(const TensorFile& file, const std::string& source);

 private:
  nlohmann::ordered_json config_;
  std::vector<std::string> type_map_;
  at::ScalarType dtype_;
  at::Device device_ = at::kCPU;
  std::unique_ptr<Descriptor> descriptor_;
  std::map<std::string, std::unique_ptr<EnergyFitting>> fittings_;
  struct Head {
    std::string fitting;
    int64_t task_case = 0;
    at::Tensor out_bias;  // (ntypes)
  };
  std::vector<std::string> head_names_;
  std::map<std::string, Head> heads_;
  ParameterList parameters_;
  const Head& head(const std::string& name) const;
  at::Tensor atom_energies(const ModelInput& input, const Head& h) const;
  int64_t inference_block_edges_ = kInferenceBlockEdges;
  int64_t recompute_layer_edges_ = default_recompute_layer_edges();
};

at::ScalarType precision_dtype(const std::string& precision);

}  // namespace atomforge::model
