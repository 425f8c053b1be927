#include "model/se_e2_a.hpp"

#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "model/descriptor_product.hpp"
#include "model/embedding_contraction.hpp"
#include "model/scalar_embedding.hpp"
#include "model/segment_contraction.hpp"
#include "model/suffix_sums.hpp"
#include "model/switched_environment.hpp"

namespace atomforge::model {

config::Node se_e2_a_schema() {
  using namespace config;
  return object(
      "DeePMD-kit's smooth edition descriptor with two-body embedding and angular information",
      with_common_descriptor_keys(
          {required("sel", array(integer("max neighbours of this type"),
                                  "maximum number of neighbours of each type within rcut, one per type of type_map")),
           defaulted("rcut", positive(number("cut-off radius (A)")), 6.0),
           defaulted("rcut_smth", non_negative(number("where the smooth switch starts (A)")), 0.5),
           defaulted("neuron", array(integer("width"), "embedding net widths"), json::array({10, 20, 40})),
           defaulted("axis_neuron", positive(integer("columns of the embedding kept for the descriptor")), 4,
                     {"n_axis_neuron"}),
           defaulted("activation_function", string("embedding activation"), "tanh"),
           defaulted("resnet_dt", boolean("learned timestep on residual connections"), false),
           defaulted("type_one_side", boolean("embedding depends on the neighbour type only"), true),
           defaulted("set_davg_zero", boolean("keep the environment mean at zero"), false),
           defaulted("env_protection", non_negative(number("s(r) = w(r)/(r + env_protection)")), 0.0),
           defaulted("exclude_types", array(array(integer("type"), "pair"), "excluded type pairs (not supported: must be empty)"),
                     json::array())}));
}

std::unique_ptr<Descriptor> make_se_e2_a(const nlohmann::ordered_json& config, const std::vector<std::string>& type_map, uint64_t seed,
                                         at::ScalarType dtype) {
  return std::make_unique<SeE2A>(config, static_cast<int64_t>(type_map.size()), seed, dtype);
}

SeE2A::SeE2A(const nlohmann::ordered_json& config, int64_t ntypes, uint64_t seed, at::ScalarType dtype)
    : rcut_(config.at("rcut").get<double>()),
      rcut_smth_(config.at("rcut_smth").get<double>()),
      env_protection_(config.at("env_protection").get<double>()),
      sel_(config.at("sel").get<std::vector<int64_t>>()),
      neuron_(config.at("neuron").get<std::vector<int64_t>>()),
      axis_neuron_(config.at("axis_neuron").get<int64_t>()),
      ntypes_(ntypes),
      type_one_side_(config.at("type_one_side").get<bool>()),
      set_davg_zero_(config.at("set_davg_zero").get<bool>()) {
  if (static_cast<int64_t>(sel_.size()) != ntypes)
    fail("model.descriptor.sel has {} entries but type_map has {} types", sel_.size(), ntypes);
  if (rcut_smth_ >= rcut_) fail("model.descriptor.rcut_smth ({}) must be below rcut ({})", rcut_smth_, rcut_);
  if (neuron_.empty()) fail("model.descriptor.neuron must not be empty");
  if (axis_neuron_ > neuron_.back())
    fail("model.descriptor.axis_neuron ({}) exceeds the last embedding width ({})", axis_neuron_, neuron_.back());
  if (!config.at("exclude_types").empty()) fail("model.descriptor.exclude_types is not supported yet");
  offsets_.assign(sel_.size() + 1, 0);
  std::partial_sum(sel_.begin(), sel_.end(), offsets_.begin() + 1);

  at::Generator generator = at::detail::createCPUGenerator(seed);
  const std::string activation = config.at("activation_function").get<std::string>();
  const bool resnet_dt = config.at("resnet_dt").get<bool>();
  const int64_t nets = type_one_side_ ? ntypes : ntypes * ntypes;
  embeddings_.reserve(static_cast<std::size_t>(nets));
  for (int64_t n = 0; n < nets; ++n)
    embeddings_.emplace_back(1, neuron_, resnet_dt, activation, false, 0, dtype, generator);

  const int64_t nnei = offsets_.back();
  davg_ = at::zeros({ntypes, nnei, 4}, at::TensorOptions().dtype(dtype));
  dstd_ = at::ones({ntypes, nnei, 4}, at::TensorOptions().dtype(dtype));
  if (!config.at("trainable").get<bool>())
    for (auto& net : embeddings_)
      for (auto& layer : net.layers())
        for (at::Tensor* t : {&layer.matrix, &layer.bias, &layer.idt})
          if (t->defined()) t->set_requires_grad(false);
}

at::Tensor SeE2A::environment(const ModelInput& input) const {
  // Padding rows are exact zeros; they are appended after the real edges (index ne).
  const at::Tensor rows = environment_rows_reference(input.edge_vec, {rcut_, rcut_smth_, env_protection_});
  const at::Tensor padded = at::cat({rows, at::zeros({1, 4}, rows.options())}, 0);
  const int64_t natoms = input.slot_index.size(0), nnei = input.slot_index.size(1);
  return padded.index_select(0, input.slot_index.reshape({-1})).view({natoms, nnei, 4});
}

namespace {

// The real (non-padding) neighbour slots of a batch, net by net (each embedding net's rows
// together, so that no net's output has to be copied into a shared matrix), centre by centre
// within a net.
struct RealSlots {
  at::Tensor position;           // (nr) flattened (natoms * nnei) slot positions
  at::Tensor centre;             // (nr)
  std::vector<int64_t> begin;    // each net's first row
  std::vector<Segments> by_net;  // each net's rows grouped by centre
  // Each centre's real slots of each neighbour type (those with sel > 0, in type order): the
  // first ones of the type's block (slots fill nearest first), the rest padding.
  at::Tensor real_count;  // (natoms, types with sel > 0)
};

RealSlots find_real_slots(const at::Tensor& slot_index, const at::Tensor& atype, int64_t padding_id,
                          const std::vector<int64_t>& offsets, int64_t ntypes, bool type_one_side) {
  const int64_t natoms = slot_index.size(0), nnei = slot_index.size(1);
  const at::Tensor real = slot_index < padding_id;  // (natoms, nnei)
  const at::Tensor atom_major = real.reshape({-1}).nonzero().view({-1});
  at::Tensor block = at::empty({nnei}, slot_index.options());
  for (int64_t t = 0; t < ntypes; ++t) block.narrow(0, offsets[t], offsets[t + 1] - offsets[t]).fill_(t);
  at::Tensor net = block.index_select(0, atom_major.remainder(nnei));
  if (!type_one_side) net = net + atype.index_select(0, atom_major.div(nnei, "floor")) * ntypes;
  const int64_t nets = type_one_side ? ntypes : ntypes * ntypes;

  RealSlots out;
  // Grouped by net, atom-major within a net: one mask per net (a handful) costs less than a
  // stable sort of the slots.
  std::vector<at::Tensor> by_net;
  for (int64_t n = 0; n < nets; ++n) by_net.push_back(atom_major.masked_select(net == n));
  out.position = at::cat(by_net);
  out.centre = out.position.div(nnei, "floor");
  int64_t begin = 0;
  for (int64_t n = 0; n < nets; ++n) {
    const int64_t count = by_net[static_cast<std::size_t>(n)].size(0);
    const at::Tensor centre = out.centre.narrow(0, begin, count);
    at::Tensor start = at::zeros({natoms + 1}, slot_index.options());
    start.narrow(0, 1, natoms).copy_(at::bincount(centre, {}, natoms).cumsum(0));
    out.begin.push_back(begin);
    out.by_net.push_back({start, centre});
    begin += count;
  }

  std::vector<at::Tensor> counts;
  for (int64_t t = 0; t < ntypes; ++t) {
    const int64_t sel = offsets[t + 1] - offsets[t];
    if (sel == 0) continue;
    const at::Tensor in_block = real.narrow(1, offsets[t], sel);
    const at::Tensor count = in_block.sum(1, /*keepdim=*/true);
    if (!at::equal(in_block, at::arange(sel, slot_index.options()).unsqueeze(0) < count))
      fail("internal: a centre's real neighbour slots of type {} are not the first of its block", t);
    counts.push_back(count);
  }
  out.real_count = counts.empty() ? at::zeros({natoms, 0}, slot_index.options()) : at::cat(counts, 1);
  return out;
}

}  // namespace

at::Tensor SeE2A::forward(const ModelInput& input) const {
  // The embedding nets run on the real neighbours only (about two thirds of the slots for water).
  // A padding slot's normalised row is -davg/dstd of its (centre type, slot), whatever the atom,
  // so the padding's share of the contraction is a per-(centre type, slot) table, summed per
  // atom by one matrix product with the padding mask: the same sum as over the padded grid.
  const int64_t natoms = input.slot_index.size(0), nnei = offsets_.back(), m1 = neuron_.back();
  const RealSlots slots =
      find_real_slots(input.slot_index, input.atype, input.edge_vec.size(0), offsets_, ntypes_, type_one_side_);
  const at::Tensor stat_row = input.atype.index_select(0, slots.centre) * nnei + slots.position.remainder(nnei);
  const at::Tensor edges = input.slot_index.reshape({-1}).index_select(0, slots.position);
  const at::Tensor env = normalised_environment(input.edge_vec, edges, stat_row, davg_.view({-1, 4}),
                                                dstd_.view({-1, 4}), {rcut_, rcut_smth_, env_protection_});  // (nr, 4)

  // Each net's share added to the next (no sum starting from zeros: one pass over T less).
  at::Tensor t_matrix;
  auto add_to_t = [&](const at::Tensor& share) { t_matrix = t_matrix.defined() ? t_matrix + share : share; };
  for (std::size_t n = 0; n < embeddings_.size(); ++n) {
    const Segments& rows = slots.by_net[n];
    if (rows.rows() == 0) continue;
    add_to_t(embedding_contraction(embeddings_[n], env.narrow(0, slots.begin[n], rows.rows()), rows));
  }

  // Padding: row -davg/dstd and its embedding, per (centre type, slot). A centre's padded slots
  // of a neighbour type are the last of that type's block, from its real count on: their share is
  // a suffix sum of the block's table, one row per (centre, neighbour type), gathered.
  if (slots.position.size(0) < natoms * nnei) {
    const at::Tensor pad_env = -davg_ / dstd_;  // (ntypes, nnei, 4)
    std::vector<at::Tensor> tables;  // per (ti, tj), in order: (sel, 4 m1)
    std::vector<int64_t> sizes, first_row;  // each table's rows, and the first of its sums
    int64_t rows_so_far = 0;
    for (int64_t ti = 0; ti < ntypes_; ++ti)
      for (int64_t tj = 0; tj < ntypes_; ++tj) {
        if (sel_[tj] == 0) continue;
        const at::Tensor rows = pad_env[ti].narrow(0, offsets_[tj], sel_[tj]);
        const Mlp& net = embeddings_[type_one_side_ ? tj : ti * ntypes_ + tj];
        tables.push_back((rows.unsqueeze(2) * scalar_embedding(net, rows.narrow(1, 0, 1)).unsqueeze(1)).view({sel_[tj], 4 * m1}));
        sizes.push_back(sel_[tj]);
        first_row.push_back(rows_so_far);
        rows_so_far += sel_[tj] + 1;
      }
    const int64_t typed = slots.real_count.size(1);  // neighbour types with sel > 0
    const at::Tensor first = at::tensor(first_row, input.atype.options()).view({ntypes_, typed});
    const at::Tensor row = first.index_select(0, input.atype) + slots.real_count;  // (natoms, typed)
    const at::Tensor sums = block_suffix_sums(at::cat(tables), sizes);  // (rows_so_far, 4 m1)
    add_to_t(sums.index_select(0, row.view({-1})).view({natoms, typed, 4 * m1}).sum(1).view({natoms, 4, m1}));
  }
  if (!t_matrix.defined()) t_matrix = at::zeros({natoms, 4, m1}, env.options());  // no slots at all

  // T's normalisation 1/nnei, applied twice, goes into the product.
  return descriptor_product(t_matrix, axis_neuron_, 1.0 / static_cast<double>(nnei * nnei));
}

void SeE2A::compute_statistics(const std::vector<ModelInput>& samples) {
  // Per centre type: mean and std of the radial column s over every slot (padding included),
  // std of the three angular columns pooled (their mean is taken as zero).
  const int64_t nnei = offsets_.back();
  std::vector<double> sum_r(ntypes_, 0), sum_r2(ntypes_, 0), sum_a(ntypes_, 0), sum_a2(ntypes_, 0), count(ntypes_, 0);
  for (const auto& sample : samples) {
    const at::Tensor env = environment(sample).detach().to(at::kDouble);
    for (int64_t t = 0; t < ntypes_; ++t) {
      const at::Tensor rows = env.index_select(0, (sample.atype == t).nonzero().view({-1}));
      if (rows.size(0) == 0) continue;
      const at::Tensor radial = rows.narrow(2, 0, 1), angular = rows.narrow(2, 1, 3);
      sum_r[t] += radial.sum().item<double>();
      sum_r2[t] += (radial * radial).sum().item<double>();
      sum_a[t] += angular.sum().item<double>();
      sum_a2[t] += (angular * angular).sum().item<double>();
      count[t] += static_cast<double>(rows.size(0) * nnei);
    }
  }
  constexpr double kProtection = 1e-2;
  at::Tensor davg = at::zeros({ntypes_, nnei, 4}, at::kDouble), dstd = at::ones({ntypes_, nnei, 4}, at::kDouble);
  for (int64_t t = 0; t < ntypes_; ++t) {
    if (count[t] == 0) continue;  // a type absent from the data keeps mean 0, std 1
    const double mean_r = sum_r[t] / count[t];
    const double std_r = std::sqrt(std::max(0.0, sum_r2[t] / count[t] - mean_r * mean_r));
    const double mean_a = sum_a[t] / (3 * count[t]);
    const double std_a = std::sqrt(std::max(0.0, sum_a2[t] / (3 * count[t]) - mean_a * mean_a));
    if (!set_davg_zero_) davg[t].select(1, 0).fill_(mean_r);
    dstd[t].select(1, 0).fill_(std::max(std_r, kProtection));
    dstd[t].narrow(1, 1, 3).fill_(std::max(std_a, kProtection));
  }
  davg_ = davg.to(davg_.scalar_type());
  dstd_ = dstd.to(dstd_.scalar_type());
}

void SeE2A::register_into(ParameterList& list, const std::string& prefix) {
  for (std::size_t n = 0; n < embeddings_.size(); ++n) {
    const std::string name = type_one_side_ ? std::to_string(n)
                                            : std::to_string(n / ntypes_) + "_" + std::to_string(n % ntypes_);
    embeddings_[n].register_into(list, prefix + "embedding." + name + ".");
  }
  list.add_buffer(prefix + "davg", &davg_);
  list.add_buffer(prefix + "dstd", &dstd_);
}

}  // namespace atomforge::model
