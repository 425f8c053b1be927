// Writing our se_e2_a models in DeePMD-kit's backend-neutral YAML layout (facts in
// deepmd_format.hpp). Keys follow DeePMD-kit's serialize() output so its deserializers find
// every constructor argument.
#include <limits>
#include <map>

#include <yaml-cpp/yaml.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "model/deepmd_format.hpp"

namespace atomforge::model {

namespace {

using json = nlohmann::ordered_json;
using Named = std::map<std::string, at::Tensor>;

void emit_values(YAML::Emitter& out, const at::Tensor& t) {
  out << YAML::Flow << YAML::BeginSeq;
  if (t.dim() == 1) {
    for (int64_t i = 0; i < t.size(0); ++i) out << t[i].item<double>();
  } else {
    for (int64_t i = 0; i < t.size(0); ++i) emit_values(out, t[i]);
  }
  out << YAML::EndSeq;
}

void emit_array(YAML::Emitter& out, const at::Tensor& t, const std::string& dtype) {
  out << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << "np.ndarray" << YAML::Key << "@is_variable"
      << YAML::Value << true << YAML::Key << "@version" << YAML::Value << 1 << YAML::Key << "dtype" << YAML::Value
      << dtype << YAML::Key << "value" << YAML::Value;
  emit_values(out, t.detach().to(at::kDouble).contiguous());
  out << YAML::EndMap;
}

void emit_ints(YAML::Emitter& out, const json& list) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const auto& v : list) out << v.get<int64_t>();
  out << YAML::EndSeq;
}

struct NetInfo {
  std::string activation;
  bool resnet_dt;
  std::string precision;
  bool fitting;  // last layer linear, one output
};

void emit_layer(YAML::Emitter& out, const Named& named, const std::string& p, bool output, const NetInfo& info) {
  const bool has_idt = named.count(p + "idt") > 0;
  out << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << "Layer" << YAML::Key << "@version" << YAML::Value
      << 2 << YAML::Key << "bias" << YAML::Value << true << YAML::Key << "use_timestep" << YAML::Value << has_idt
      << YAML::Key << "activation_function" << YAML::Value << (output ? "none" : info.activation) << YAML::Key
      << "resnet" << YAML::Value << !output << YAML::Key << "precision" << YAML::Value << info.precision << YAML::Key
      << "trainable" << YAML::Value << true << YAML::Key << "@variables" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "w" << YAML::Value;
  emit_array(out, named.at(p + "w"), info.precision);
  out << YAML::Key << "b" << YAML::Value;
  emit_array(out, named.at(p + "b"), info.precision);
  out << YAML::Key << "idt" << YAML::Value;
  if (has_idt) {
    emit_array(out, named.at(p + "idt"), info.precision);
  } else {
    out << YAML::Null;
  }
  out << YAML::EndMap << YAML::EndMap;
}

void emit_network(YAML::Emitter& out, const Named& named, const std::string& prefix, const json& neuron,
                  const NetInfo& info) {
  int64_t layers = 0;
  while (named.count(prefix + "layers." + std::to_string(layers) + ".w")) ++layers;
  const int64_t in_dim = named.at(prefix + "layers.0.w").size(0);
  out << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << (info.fitting ? "FittingNetwork" : "EmbeddingNetwork")
      << YAML::Key << "@version" << YAML::Value << (info.fitting ? 1 : 2) << YAML::Key << "in_dim" << YAML::Value
      << in_dim;
  if (info.fitting) out << YAML::Key << "out_dim" << YAML::Value << 1 << YAML::Key << "bias_out" << YAML::Value << true;
  else out << YAML::Key << "bias" << YAML::Value << true;
  out << YAML::Key << "neuron" << YAML::Value;
  emit_ints(out, neuron);
  out << YAML::Key << "activation_function" << YAML::Value << info.activation << YAML::Key << "resnet_dt"
      << YAML::Value << info.resnet_dt << YAML::Key << "precision" << YAML::Value << info.precision << YAML::Key
      << "layers" << YAML::Value << YAML::BeginSeq;
  for (int64_t l = 0; l < layers; ++l)
    emit_layer(out, named, prefix + "layers." + std::to_string(l) + ".", info.fitting && l + 1 == layers, info);
  out << YAML::EndSeq << YAML::EndMap;
}

// {@class NetworkCollection, ndim, ntypes, network_type, networks: [...]} from our net names.
void emit_collection(YAML::Emitter& out, const Named& named, int64_t ndim, int64_t ntypes,
                     const std::vector<std::string>& prefixes, const json& neuron, const NetInfo& info) {
  out << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << "NetworkCollection" << YAML::Key << "@version"
      << YAML::Value << 1 << YAML::Key << "ndim" << YAML::Value << ndim << YAML::Key << "ntypes" << YAML::Value
      << ntypes << YAML::Key << "network_type" << YAML::Value
      << (info.fitting ? "fitting_network" : "embedding_network") << YAML::Key << "networks" << YAML::Value
      << YAML::BeginSeq;
  for (const auto& p : prefixes) emit_network(out, named, p, neuron, info);
  out << YAML::EndSeq << YAML::EndMap;
}

void emit_json(YAML::Emitter& out, const json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      emit_json(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : j) emit_json(out, v);
    out << YAML::EndSeq;
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<int64_t>();
  } else if (j.is_number()) {
    out << j.get<double>();
  } else if (j.is_string()) {
    out << j.get<std::string>();
  } else {
    out << YAML::Null;
  }
}

}  // namespace

std::string export_deepmd_model_text(const EnergyModel& model) {
  const json& config = model.config();
  const json& d = config.at("descriptor");
  if (d.at("type") != "se_e2_a")
    fail("only se_e2_a models can be written in DeePMD-kit's format (this one is '{}')", d.at("type").get<std::string>());
  const std::string head = model.only_head();
  const std::string fitting_key = config.at("heads").at(head).at("fitting").get<std::string>();
  const json& f = config.at("fitting_nets").at(fitting_key);
  if (f.at("dim_case_embd").get<int64_t>() != 0) fail("fitting nets with dim_case_embd cannot be written in DeePMD-kit's format");

  Named named;
  for (const auto& [n, t] : model.parameters().parameters()) named[n] = *t;
  for (const auto& [n, t] : model.parameters().buffers()) named[n] = *t;
  const auto& type_map = model.type_map();
  const auto ntypes = static_cast<int64_t>(type_map.size());
  const std::string precision = model.dtype() == at::kFloat ? "float32" : "float64";
  const bool one_side = d.at("type_one_side").get<bool>();

  std::vector<std::string> embedding;  // DeePMD-kit's order: (centre ti, neighbour tj) at ti + tj * ntypes
  for (int64_t k = 0; k < (one_side ? ntypes : ntypes * ntypes); ++k)
    embedding.push_back("descriptor.embedding." +
                        (one_side ? std::to_string(k) : std::to_string(k % ntypes) + "_" + std::to_string(k / ntypes)) +
                        ".");
  std::vector<std::string> fitting;
  const std::string fit_prefix = "fitting." + fitting_key + ".net.";
  for (int64_t t = 0; named.count(fit_prefix + std::to_string(t) + ".layers.0.w"); ++t)
    fitting.push_back(fit_prefix + std::to_string(t) + ".");
  const bool mixed = fitting.size() == 1 && ntypes > 1;

  YAML::Emitter out;
  out.SetDoublePrecision(std::numeric_limits<double>::max_digits10);
  out << YAML::BeginMap << YAML::Key << "software" << YAML::Value << "atomforge" << YAML::Key << "backend"
      << YAML::Value << "atomforge";
  out << YAML::Key << "model_def_script" << YAML::Value;
  json script = {{"type_map", type_map}, {"descriptor", d}, {"fitting_net", f}};
  emit_json(out, script);

  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << "Model"
      << YAML::Key << "type" << YAML::Value << "standard" << YAML::Key << "@version" << YAML::Value << 2 << YAML::Key
      << "type_map" << YAML::Value << YAML::Flow << type_map << YAML::Key << "atom_exclude_types" << YAML::Value
      << YAML::Flow << YAML::BeginSeq << YAML::EndSeq << YAML::Key << "pair_exclude_types" << YAML::Value << YAML::Flow
      << YAML::BeginSeq << YAML::EndSeq << YAML::Key << "rcond" << YAML::Value << YAML::Null << YAML::Key
      << "preset_out_bias" << YAML::Value << YAML::Null;

  // Descriptor.
  out << YAML::Key << "descriptor" << YAML::Value << YAML::BeginMap << YAML::Key << "@class" << YAML::Value
      << "Descriptor" << YAML::Key << "type" << YAML::Value << "se_e2_a" << YAML::Key << "@version" << YAML::Value << 2;
  for (const char* key : {"rcut", "rcut_smth"}) out << YAML::Key << key << YAML::Value << d.at(key).get<double>();
  out << YAML::Key << "sel" << YAML::Value;
  emit_ints(out, d.at("sel"));
  out << YAML::Key << "neuron" << YAML::Value;
  emit_ints(out, d.at("neuron"));
  out << YAML::Key << "axis_neuron" << YAML::Value << d.at("axis_neuron").get<int64_t>() << YAML::Key << "resnet_dt"
      << YAML::Value << d.at("resnet_dt").get<bool>() << YAML::Key << "trainable" << YAML::Value
      << d.at("trainable").get<bool>() << YAML::Key << "type_one_side" << YAML::Value << one_side << YAML::Key
      << "exclude_types" << YAML::Value << YAML::Flow << YAML::BeginSeq << YAML::EndSeq << YAML::Key
      << "env_protection" << YAML::Value << d.at("env_protection").get<double>() << YAML::Key << "set_davg_zero"
      << YAML::Value << d.at("set_davg_zero").get<bool>() << YAML::Key << "activation_function" << YAML::Value
      << d.at("activation_function").get<std::string>() << YAML::Key << "precision" << YAML::Value << precision
      << YAML::Key << "spin" << YAML::Value << YAML::Null << YAML::Key << "type_map" << YAML::Value << YAML::Flow
      << type_map;
  out << YAML::Key << "env_mat" << YAML::Value << YAML::BeginMap << YAML::Key << "rcut" << YAML::Value
      << d.at("rcut").get<double>() << YAML::Key << "rcut_smth" << YAML::Value << d.at("rcut_smth").get<double>()
      << YAML::Key << "protection" << YAML::Value << d.at("env_protection").get<double>() << YAML::EndMap;
  out << YAML::Key << "embeddings" << YAML::Value;
  emit_collection(out, named, one_side ? 1 : 2, ntypes, embedding, d.at("neuron"),
                  {d.at("activation_function").get<std::string>(), d.at("resnet_dt").get<bool>(), precision, false});
  out << YAML::Key << "@variables" << YAML::Value << YAML::BeginMap << YAML::Key << "davg" << YAML::Value;
  emit_array(out, named.at("descriptor.davg"), precision);
  out << YAML::Key << "dstd" << YAML::Value;
  emit_array(out, named.at("descriptor.dstd"), precision);
  out << YAML::EndMap << YAML::EndMap;

  // Fitting: our bias goes to out_bias, so bias_atom_e is zero.
  const int64_t dim_descrpt = named.at(fitting.front() + "layers.0.w").size(0);
  out << YAML::Key << "fitting" << YAML::Value << YAML::BeginMap << YAML::Key << "@class" << YAML::Value << "Fitting"
      << YAML::Key << "type" << YAML::Value << "ener" << YAML::Key << "@version" << YAML::Value << 3 << YAML::Key
      << "var_name" << YAML::Value << "energy" << YAML::Key << "ntypes" << YAML::Value << ntypes << YAML::Key
      << "dim_descrpt" << YAML::Value << dim_descrpt << YAML::Key << "neuron" << YAML::Value;
  emit_ints(out, f.at("neuron"));
  out << YAML::Key << "resnet_dt" << YAML::Value << f.at("resnet_dt").get<bool>() << YAML::Key << "numb_fparam"
      << YAML::Value << 0 << YAML::Key << "numb_aparam" << YAML::Value << 0 << YAML::Key << "dim_case_embd"
      << YAML::Value << 0 << YAML::Key << "rcond" << YAML::Value << YAML::Null << YAML::Key << "activation_function"
      << YAML::Value << f.at("activation_function").get<std::string>() << YAML::Key << "precision" << YAML::Value
      << precision << YAML::Key << "mixed_types" << YAML::Value << mixed << YAML::Key << "exclude_types"
      << YAML::Value << YAML::Flow << YAML::BeginSeq << YAML::EndSeq << YAML::Key << "type_map" << YAML::Value
      << YAML::Flow << type_map << YAML::Key << "tot_ener_zero" << YAML::Value << false << YAML::Key << "trainable"
      << YAML::Value << f.at("trainable").get<bool>() << YAML::Key << "layer_name" << YAML::Value << YAML::Null
      << YAML::Key << "use_aparam_as_mask" << YAML::Value << false << YAML::Key << "spin" << YAML::Value << YAML::Null;
  out << YAML::Key << "nets" << YAML::Value;
  emit_collection(out, named, mixed ? 0 : 1, ntypes, fitting, f.at("neuron"),
                  {f.at("activation_function").get<std::string>(), f.at("resnet_dt").get<bool>(), precision, true});
  out << YAML::Key << "@variables" << YAML::Value << YAML::BeginMap << YAML::Key << "bias_atom_e" << YAML::Value;
  emit_array(out, at::zeros({ntypes, 1}, at::kDouble), "float64");
  for (const char* key : {"case_embd", "fparam_avg", "fparam_inv_std", "aparam_avg", "aparam_inv_std"})
    out << YAML::Key << key << YAML::Value << YAML::Null;
  out << YAML::EndMap << YAML::EndMap;

  out << YAML::Key << "@variables" << YAML::Value << YAML::BeginMap << YAML::Key << "out_bias" << YAML::Value;
  emit_array(out, named.at("bias." + head).view({1, ntypes, 1}), "float64");
  out << YAML::Key << "out_std" << YAML::Value;
  emit_array(out, at::ones({1, ntypes, 1}, at::kDouble), "float64");
  out << YAML::EndMap << YAML::EndMap;  // model
  out << YAML::EndMap;
  if (!out.good()) fail("writing DeePMD-kit YAML failed: {}", out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

void export_deepmd_model(const EnergyModel& model, const std::string& path) {
  write_file_atomic(path, export_deepmd_model_text(model));
}

}  // namespace atomforge::model
