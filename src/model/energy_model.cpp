#include "model/energy_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <torch/csrc/autograd/autograd.h>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "model/centre_blocks.hpp"
#include "model/cpu_kernels.hpp"
#include "model/gather_scatter.hpp"
#include "model/recompute.hpp"
#include "model/registry.hpp"
#include "model/scalar_embedding.hpp"

namespace atomforge::model {

namespace {

// Dropping the farthest neighbours of a type beyond sel is DeePMD-kit's behaviour too, but it
// changes the physics silently: say so once per system, with the numbers to fix it.
void warn_truncated_once(const std::string& source, const ModelInput& input, const NeighborSelection& selection) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  const std::lock_guard<std::mutex> lock(mutex);
  if (!warned.insert(source).second) return;
  spdlog::warn("{}: {} of {} atoms (in {} frame(s)) have more neighbours of some type within rcut {} than sel [{}] "
               "allows; the farthest are left out. Raise model.descriptor.sel.",
               source, input.truncated_centres, input.natoms(), input.nframes, selection.rcut,
               fmt::join(selection.sel, ", "));
}

}  // namespace

at::ScalarType precision_dtype(const std::string& precision) {
  if (precision == "float64" || precision == "default") return at::kDouble;
  if (precision == "float32") return at::kFloat;
  fail("unknown precision '{}' (float64 or float32)", precision);
}

nlohmann::ordered_json EnergyModel::single_task_config(const nlohmann::ordered_json& section) {
  nlohmann::ordered_json config = section;
  config.erase("fitting_net");
  config["fitting_nets"] = {{kDefaultHead, section.at("fitting_net")}};
  config["heads"] = {{kDefaultHead, {{"fitting", kDefaultHead}, {"case", 0}}}};
  return config;
}

int64_t EnergyModel::default_recompute_layer_edges() {
  const char* set = std::getenv("ATOMFORGE_RECOMPUTE_EDGES");
  if (set == nullptr) return kRecomputeLayerEdges;
  const std::string text(set);
  std::size_t used = 0;
  long long edges = -1;
  try {
    edges = std::stoll(text, &used);
  } catch (const std::exception&) {
  }
  if (edges < 0 || used != text.size())
    fail("environment variable ATOMFORGE_RECOMPUTE_EDGES='{}': expected a number of edges (0: never recompute)", text);
  return edges;
}

EnergyModel::EnergyModel(nlohmann::ordered_json config, uint64_t default_seed) : config_(std::move(config)) {
  type_map_ = config_.at("type_map").get<std::vector<std::string>>();
  if (type_map_.empty()) fail("model.type_map must not be empty");
  const auto& descriptor_config = config_.at("descriptor");
  dtype_ = precision_dtype(descriptor_config.at("precision").get<std::string>());
  const int64_t ntypes = static_cast<int64_t>(type_map_.size());
  const auto& entry = find_descriptor(descriptor_config.at("type").get<std::string>());
  descriptor_ = entry.make(descriptor_config, type_map_, descriptor_config.value("seed", default_seed), dtype_);
  descriptor_->register_into(parameters_, "descriptor.");

  uint64_t fitting_index = 0;
  for (const auto& [key, fitting_config] : config_.at("fitting_nets").items()) {
    if (precision_dtype(fitting_config.at("precision").get<std::string>()) != dtype_)
      fail("fitting net '{}': precision must equal the descriptor's (mixed precision is not supported)", key);
    auto fitting = std::make_unique<EnergyFitting>(fitting_config, ntypes, descriptor_->output_dim(),
                                                   fitting_config.value("mixed_types", descriptor_->mixed_types()),
                                                   fitting_config.value("seed", default_seed + fitting_index++), dtype_);
    fitting->register_into(parameters_, "fitting." + key + ".");
    fittings_.emplace(key, std::move(fitting));
  }
  for (const auto& [name, head_config] : config_.at("heads").items()) {
    Head h;
    h.fitting = head_config.at("fitting").get<std::string>();
    h.task_case = head_config.value("case", int64_t{0});
    if (!fittings_.count(h.fitting)) fail("head '{}' refers to unknown fitting net '{}'", name, h.fitting);
    const int64_t cases = fittings_.at(h.fitting)->dim_case_embd();
    if (cases > 0 ? h.task_case >= cases : h.task_case != 0)
      fail("head '{}': task index {} does not fit fitting net '{}' (dim_case_embd {})", name, h.task_case, h.fitting,
           cases);
    h.out_bias = at::zeros({ntypes}, at::TensorOptions().dtype(dtype_));
    head_names_.push_back(name);
    heads_.emplace(name, std::move(h));
  }
  if (head_names_.empty()) fail("the model has no head");
  for (const auto& name : head_names_) parameters_.add_buffer("bias." + name, &heads_.at(name).out_bias);
}

bool EnergyModel::has_head(const std::string& name) const { return heads_.count(name) > 0; }

void EnergyModel::to(at::Device device) {
  parameters_.to(device);
  device_ = device;
}

const EnergyModel::Head& EnergyModel::head(const std::string& name) const {
  auto it = heads_.find(name);
  if (it == heads_.end()) {
    std::string list;
    for (const auto& h : head_names_) list += (list.empty() ? "" : ", ") + h;
    fail("the model has no head '{}' (heads: {})", name, list);
  }
  return it->second;
}

const std::string& EnergyModel::only_head() const {
  if (head_names_.size() != 1) {
    std::string list;
    for (const auto& h : head_names_) list += (list.empty() ? "" : ", ") + h;
    fail("this is a multi-task model: choose a head ({})", list);
  }
  return head_names_.front();
}

at::Tensor& EnergyModel::out_bias(const std::string& name) { return const_cast<Head&>(head(name)).out_bias; }

Prediction EnergyModel::evaluate(const ModelInput& input, bool create_graph) const {
  return evaluate(input, only_head(), create_graph);
}

ModelInput EnergyModel::prepare(const data::System& system, const std::vector<int64_t>& frames) const {
  ModelInput input = build_model_input(system, frames, type_map_, descriptor_->selection(), dtype_);
  if (input.truncated_centres > 0) warn_truncated_once(system.path, input, descriptor_->selection());
  return input;
}

ModelInput EnergyModel::prepare(const double* coord, const double* box, bool pbc, const std::vector<int32_t>& types,
                                int64_t nframes) const {
  return build_model_input(coord, box, pbc, types, nframes, descriptor_->selection(), dtype_);
}

ModelInput EnergyModel::prepare_local(const double* coord, int64_t nlocal, const std::vector<int32_t>& types) const {
  const NeighborSelection selection = descriptor_->selection();
  return build_local_model_input(coord, nlocal, types, selection, dtype_,
                                 /*ghosts_are_nodes=*/descriptor_->receptive_field() > selection.rcut);
}

ModelInput EnergyModel::prepare_exchange(const double* coord, int64_t nlocal, const std::vector<int32_t>& types,
                                         std::shared_ptr<GhostExchange> exchange) const {
  if (descriptor_->ghost_exchanges().width == 0)
    fail("the {} descriptor cannot refresh ghost features between layers",
         config_.at("descriptor").at("type").get<std::string>());
  ModelInput input = build_exchange_model_input(coord, nlocal, types, descriptor_->selection(), dtype_);
  input.ghost_exchange = std::move(exchange);
  return input;
}

at::Tensor EnergyModel::atom_energies(const ModelInput& input, const Head& h) const {
  const at::Tensor descriptor = descriptor_->forward(input);
  at::Tensor atom_energy = fittings_.at(h.fitting)->forward(descriptor, input.atype, h.task_case) +
                           h.out_bias.index_select(0, input.atype);
  if (input.nowned >= 0) {  // ghost nodes carry features, not energy
    const at::Tensor owned = at::arange(input.natoms(), input.atype.options()).remainder(input.nloc) < input.nowned;
    atom_energy = atom_energy * owned.to(atom_energy.scalar_type());
  }
  return atom_energy;
}

namespace {

// -g r^T per edge, (edges, 9).
at::Tensor edge_virials(const at::Tensor& g, const at::Tensor& r) {
  return -(g.unsqueeze(2) * r.unsqueeze(1)).reshape({-1, 9});
}

// virial[f] = -sum over frame f's edges of g r^T, g = dE/dr. Edges come frame by frame (every
// input builder makes them so): on the CPU one (3 x n)(n x 3) product per frame, not (edges, 9)
// outer products and a scatter (a pass over 17k x 9 numbers each way per training step).
at::Tensor frame_virials(const at::Tensor& g, const at::Tensor& r, const at::Tensor& edge_frame, int64_t nframes) {
  if (cpu_kernels_for(edge_frame)) {
    const at::Tensor frames = edge_frame.contiguous();
    const int64_t* f = frames.data_ptr<int64_t>();
    const int64_t ne = frames.numel();
    if (!std::is_sorted(f, f + ne) || (ne > 0 && (f[0] < 0 || f[ne - 1] >= nframes)))
      fail("internal: the model input's edges are not grouped by frame 0 .. {}", nframes - 1);
    std::vector<at::Tensor> rows;
    int64_t begin = 0;
    for (int64_t k = 0; k < nframes; ++k) {
      const int64_t end = std::upper_bound(f + begin, f + ne, k) - f;
      rows.push_back(at::mm(g.narrow(0, begin, end - begin).t(), r.narrow(0, begin, end - begin)).reshape({1, 9}));
      begin = end;
    }
    return nframes == 0 ? at::zeros({0, 9}, g.options()) : -at::cat(rows);
  }
  // scatter_add, not index_add: libtorch's index_add runs an operator per index.
  return at::zeros({nframes, 9}, g.options())
      .scatter_add(0, edge_frame.view({-1, 1}).expand({-1, 9}), edge_virials(g, r));
}

}  // namespace

Prediction EnergyModel::evaluate(const ModelInput& given, const std::string& head_name, bool create_graph) const {
  const Head& h = head(head_name);
  const ModelInput input = given.edge_vec.device() == device_ ? given : to_device(given, device_);
  ModelInput local = input;
  local.edge_vec = input.edge_vec.detach().set_requires_grad(true);
  std::optional<ForcesOnlyScope> forces_only;  // inference: no parameter gradient will be asked for
  if (!create_graph) forces_only.emplace();
  const bool blockwise = !create_graph && descriptor_->per_centre() && input.nowned < 0 && !input.partition &&
                         !input.ghost_exchange;
  const std::vector<CentreBlock> blocks =
      plan_centre_blocks(input, blockwise ? inference_block_edges_ : int64_t{0});
  at::Tensor atom_energy, g;
  if (blocks.size() == 1) {
    std::optional<RecomputeScope> recompute;
    if (!create_graph && recompute_layer_edges_ > 0 && input.edge_vec.size(0) > recompute_layer_edges_) recompute.emplace();
    atom_energy = atom_energies(local, h);
    auto grads = torch::autograd::grad({atom_energy.sum()}, {local.edge_vec}, {}, /*retain_graph=*/create_graph,
                                       /*create_graph=*/create_graph, /*allow_unused=*/true);
    g = grads[0].defined() ? grads[0] : at::zeros_like(local.edge_vec);
  } else {  // each block's energy, and its gradient along the block's own edges
    std::vector<at::Tensor> parts;
    g = at::zeros_like(input.edge_vec);
    for (const CentreBlock& block : blocks) {
      ModelInput part = centre_block_input(input, block);
      part.edge_vec = part.edge_vec.detach().set_requires_grad(true);
      const at::Tensor e = atom_energies(part, h);
      auto grads = torch::autograd::grad({e.sum()}, {part.edge_vec}, {}, false, false, /*allow_unused=*/true);
      if (grads[0].defined()) g.narrow(0, block.first_edge, block.end_edge - block.first_edge).copy_(grads[0]);
      parts.push_back(e.detach());
    }
    atom_energy = at::cat(parts);
  }
  const at::Tensor energy =
      at::zeros({input.nframes}, atom_energy.options()).index_add(0, input.atom_frame, atom_energy);

  const int64_t rows = input.natoms() + input.nframes * input.nghost;  // every atom, ghosts included
  Prediction out;
  out.force = scatter_edge_ends(g, local.edge_center, local.edge_neighbor, rows, -1);
  out.virial = frame_virials(g, local.edge_vec, local.edge_frame, input.nframes);
  out.energy = energy;
  out.atom_energy = atom_energy;
  if (input.nloc > 0) {  // frames of one size: per-frame shapes
    out.force = out.force.view({input.nframes, input.nall(), 3});
    out.atom_energy = out.atom_energy.view({input.nframes, input.nloc});
    if (input.nowned >= 0) out.atom_energy = out.atom_energy.narrow(1, 0, input.nowned);
  }
  if (!create_graph) {  // inference: per-atom virials too (training never needs them)
    out.atom_virial = scatter_edge_virials(g.detach(), local.edge_vec.detach(), local.edge_center, local.edge_neighbor, rows);
    if (input.nloc > 0) out.atom_virial = out.atom_virial.view({input.nframes, input.nall(), 9});
    for (at::Tensor* t : {&out.energy, &out.force, &out.virial, &out.atom_energy, &out.atom_virial})
      *t = t->detach().to(at::kCPU);
  }
  return out;
}

void EnergyModel::compute_statistics(const std::vector<data::System>& systems,
                                     const std::vector<int64_t>& batch_sizes) {
  const int64_t nbatch = config_.at("data_stat_nbatch").get<int64_t>();
  std::vector<ModelInput> samples;
  for (std::size_t s = 0; s < systems.size(); ++s) {
    const auto& system = systems[s];
    const int64_t want = std::min<int64_t>(system.nframes, nbatch * batch_sizes.at(s));
    std::vector<int64_t> frames;
    for (int64_t k = 0; k < want; ++k) frames.push_back(k * system.nframes / want);  // spread evenly
    samples.push_back(prepare(system, frames));
  }
  descriptor_->compute_statistics(samples);
}

void EnergyModel::fit_out_bias(const std::string& head_name, const std::vector<data::System>& systems,
                               bool residual) {
  Head& h = const_cast<Head&>(head(head_name));
  const int64_t ntypes = static_cast<int64_t>(type_map_.size());
  if (residual) h.out_bias.zero_();
  // The frames of a system share one composition, so their least-squares rows are equal: one row
  // per system, weighted by sqrt(frames), against its mean energy has the same minimisers (and the
  // same minimum-norm one) and keeps memory O(systems) however many frames there are.
  std::vector<double> counts, energies;
  constexpr int64_t kChunk = 16;
  for (const auto& system : systems) {
    if (!system.has_energy()) continue;
    std::vector<double> row(ntypes, 0.0);
    for (int32_t t : data::map_types(system, type_map_)) row[t] += 1.0;
    double sum = 0;
    for (int64_t f = 0; f < system.nframes; ++f) sum += *system.frame_energy(f);
    for (int64_t begin = 0; residual && begin < system.nframes; begin += kChunk) {
      std::vector<int64_t> frames;
      for (int64_t f = begin; f < std::min(system.nframes, begin + kChunk); ++f) frames.push_back(f);
      sum -= evaluate(prepare(system, frames), head_name, false).energy.to(at::kDouble).sum().item<double>();
    }
    const double weight = std::sqrt(static_cast<double>(system.nframes));
    for (const double c : row) counts.push_back(weight * c);
    energies.push_back(weight * sum / static_cast<double>(system.nframes));
  }
  if (energies.empty()) fail("cannot fit the energy bias: no system has energy labels");
  const int64_t n = static_cast<int64_t>(energies.size());
  const at::Tensor a = at::from_blob(counts.data(), {n, ntypes}, at::kDouble);
  const at::Tensor b = at::from_blob(energies.data(), {n, 1}, at::kDouble);
  // Minimum-norm solution: with a single composition the system is rank-deficient.
  const at::Tensor bias = at::matmul(at::linalg_pinv(a), b).view({ntypes});
  h.out_bias = bias.to(h.out_bias.device(), dtype_);
}

std::unique_ptr<EnergyModel> EnergyModel::extract_head(const std::string& name) const {
  const Head& h = head(name);
  nlohmann::ordered_json config = config_;
  config["fitting_nets"] = {{h.fitting, config_.at("fitting_nets").at(h.fitting)}};
  config["heads"] = {{name, config_.at("heads").at(name)}};
  auto single = std::make_unique<EnergyModel>(config, 0);
  // Copy every array the single-head model has, by name, from this model.
  std::map<std::string, at::Tensor> mine;
  for (const auto& [n, t] : parameters_.parameters()) mine[n] = *t;
  for (const auto& [n, t] : parameters_.buffers()) mine[n] = *t;
  auto copy = [&](const std::string& n, at::Tensor* t) {
    const bool grad = t->requires_grad();
    *t = mine.at(n).detach().clone().set_requires_grad(grad);
  };
  for (const auto& [n, t] : single->parameters_.parameters()) copy(n, t);
  for (const auto& [n, t] : single->parameters_.buffers()) copy(n, t);
  single->device_ = device_;  // the copies are where this model's arrays are
  return single;
}

std::unique_ptr<EnergyModel> EnergyModel::with_elements(const std::vector<std::string>& added, uint64_t seed) const {
  if (!descriptor_->mixed_types())
    fail("descriptor '{}' has parameters per element, so the model cannot take new elements ({}); graph trunks "
         "(painn, dimenet) embed elements by atomic number and can",
         config_.at("descriptor").at("type").get<std::string>(), fmt::join(added, ", "));
  nlohmann::ordered_json config = config_;
  for (const auto& element : added) config["type_map"].push_back(element);
  auto extended = std::make_unique<EnergyModel>(config, seed);
  std::map<std::string, at::Tensor> mine;
  for (const auto& [n, t] : parameters_.parameters()) mine[n] = *t;
  for (const auto& [n, t] : parameters_.buffers()) mine[n] = *t;
  // Same shapes except the per-type biases (their new entries start at 0, for the bias fit) and
  // fitting nets of new types when a fitting net has one per type (those start fresh).
  auto copy = [&](const std::string& n, at::Tensor* t) {
    if (!mine.count(n)) return;
    at::NoGradGuard no_grad;
    const at::Tensor& source = mine.at(n);
    if (source.sizes() == t->sizes()) {
      t->copy_(source);
    } else if (n.rfind("bias.", 0) == 0) {
      t->zero_();
      t->narrow(0, 0, source.size(0)).copy_(source);
    } else {
      fail("with_elements: '{}' changes shape with the type map", n);
    }
  };
  for (const auto& [n, t] : extended->parameters_.parameters()) copy(n, t);
  for (const auto& [n, t] : extended->parameters_.buffers()) copy(n, t);
  return extended;
}

void EnergyModel::save(TensorFile& file) const {
  file.meta["kind"] = "atomforge-energy-model";
  file.meta["type_map"] = type_map_;
  file.meta["rcut"] = rcut();
  file.meta["precision"] = dtype_ == at::kFloat ? "float32" : "float64";
  file.meta["descriptor"] = config_.at("descriptor").at("type");
  file.meta["heads"] = head_names_;
  file.meta["model"] = config_;
  parameters_.save(file, "model.");
}

std::unique_ptr<EnergyModel> EnergyModel::load(const TensorFile& file, const std::string& source) {
  if (!file.meta.contains("model")) fail("{}: holds no model", source);
  std::unique_ptr<EnergyModel> model;
  try {
    model = std::make_unique<EnergyModel>(file.meta.at("model"), 0);
  } catch (...) {
    rethrow_with_context(source);
  }
  model->parameters_.load(file, "model.", source);
  return model;
}

}  // namespace atomforge::model
