// Reading DeePMD-kit's backend-neutral YAML model files (layout facts in deepmd_format.hpp).
#include <filesystem>
#include <map>

#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/atomic_file.hpp"
#include "core/config_schema.hpp"
#include "core/error.hpp"
#include "model/deepmd_format.hpp"
#include "model/registry.hpp"

namespace atomforge::model {

namespace {

using json = nlohmann::ordered_json;

// A YAML node with its dotted path, so every error names the key at fault.
struct Cursor {
  YAML::Node node;
  std::string path;

  bool has(const std::string& key) const { return node.IsMap() && node[key] && !node[key].IsNull(); }
  Cursor at(const std::string& key) const {
    if (!node.IsMap()) fail("{} is not a mapping", path);
    const YAML::Node child = node[key];
    const std::string child_path = path.empty() ? key : path + "." + key;
    if (!child) fail("missing key '{}'", child_path);
    return {child, child_path};
  }
  Cursor at(std::size_t index) const {
    if (!node.IsSequence()) fail("{} is not a list", path);
    if (index >= node.size()) fail("{} has {} entries, needs index {}", path, node.size(), index);
    return {node[index], path + "[" + std::to_string(index) + "]"};
  }
  std::size_t size() const {
    if (!node.IsSequence()) fail("{} is not a list", path);
    return node.size();
  }
  template <typename T>
  T as() const {
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      fail("{} has the wrong type", path);
    }
  }
  template <typename T>
  T value(const std::string& key, T fallback) const {
    return has(key) ? at(key).as<T>() : fallback;
  }
  bool empty_list(const std::string& key) const { return !has(key) || at(key).size() == 0; }
};

// `where` is a dotted key path (the key need not exist).
void require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) fail("{}: {}", where, what);
}
std::string key_path(const Cursor& c, const std::string& key) { return c.path + "." + key; }

// Nested lists of the shape found along the first entries -> row-major values.
void flatten(const Cursor& c, std::size_t depth, const std::vector<int64_t>& shape, std::vector<double>& values) {
  if (depth == shape.size()) {
    require(!c.node.IsSequence(), c.path, "ragged array");
    values.push_back(c.as<double>());
    return;
  }
  require(c.node.IsSequence() && static_cast<int64_t>(c.node.size()) == shape[depth], c.path, "ragged array");
  for (std::size_t i = 0; i < c.node.size(); ++i) flatten(c.at(i), depth + 1, shape, values);
}

// An np.ndarray node as a double tensor; undefined for null.
at::Tensor read_array(const Cursor& c) {
  if (!c.node || c.node.IsNull()) return {};
  require(c.node.IsMap() && c.value<std::string>("@class", "") == "np.ndarray", c.path,
          "expected an array ({\"@class\": \"np.ndarray\", dtype, value})");
  const std::string dtype = c.at("dtype").as<std::string>();
  require(dtype == "float64" || dtype == "float32", key_path(c, "dtype"), "unsupported dtype '" + dtype + "'");
  const Cursor value = c.at("value");
  std::vector<int64_t> shape;
  // YAML::Node's operator= writes into the referenced node: walk with reset().
  for (YAML::Node n = value.node; n.IsSequence(); n.reset(n[0])) {
    shape.push_back(static_cast<int64_t>(n.size()));
    if (n.size() == 0) break;
  }
  std::vector<double> values;
  flatten(value, 0, shape, values);
  return at::tensor(values, at::kDouble).view(shape).clone();
}

at::Tensor read_variable(const Cursor& owner, const std::string& key) {
  const Cursor vars = owner.at("@variables");
  return vars.has(key) ? read_array(vars.at(key)) : at::Tensor();
}

struct Array {
  std::string path;
  at::Tensor value;
  bool implied = false;  // not in the file (an absent idt read as ones)
};
using Arrays = std::map<std::string, Array>;  // our parameter name -> array read from the file

void expect_class(const Cursor& c, const std::string& expected) {
  const std::string got = c.value<std::string>("@class", expected);
  require(got == expected, c.path, "@class is '" + got + "', expected '" + expected + "'");
}

// One network's layers into `arrays` under `prefix`; `fitting` nets end in a linear layer.
// Our layers multiply by idt whenever it exists, DeePMD-kit's only where it is stored: a missing
// idt of a layer that has one in our model reads as ones (exactly the same function).
void read_network(const Cursor& net, const std::string& prefix, const std::string& activation, bool fitting,
                  Arrays& arrays) {
  const Cursor layers = net.at("layers");
  const std::size_t n = layers.size();
  require(n > 0, layers.path, "a network needs layers");
  for (std::size_t l = 0; l < n; ++l) {
    const Cursor layer = layers.at(l);
    const bool output = fitting && l + 1 == n;
    expect_class(layer, "Layer");
    const std::string act = layer.value<std::string>("activation_function", "none");
    const std::string want = output ? "none" : activation;
    require(act == want || (output && act == "linear"), key_path(layer, "activation_function"),
            "is '" + act + "', expected '" + want + "' (one activation per network, linear output layer)");
    const at::Tensor w = read_variable(layer, "w"), b = read_variable(layer, "b"), idt = read_variable(layer, "idt");
    const std::string vars = layer.path + ".@variables";
    require(w.defined() && w.dim() == 2, vars + ".w", "must be a matrix");
    require(b.defined(), vars + ".b", "is required (layers without bias are not supported)");
    const int64_t in = w.size(0), out = w.size(1);
    require(b.numel() == out, vars + ".b", "has " + std::to_string(b.numel()) + " entries, w has " +
                                         std::to_string(out) + " columns");
    const bool skip_shape = out == in || out == 2 * in;
    const bool resnet = layer.value<bool>("resnet", false);
    // Our hidden layers always add the skip connection where the shape allows one.
    if (skip_shape) require(resnet == !output, key_path(layer, "resnet"), output ? "must be false for the output layer"
                                                                          : "must be true (DeePMD-kit's default)");
    const std::string p = prefix + "layers." + std::to_string(l) + ".";
    arrays[p + "w"] = {vars + ".w", w};
    arrays[p + "b"] = {vars + ".b", b.reshape({out})};
    if (idt.defined()) {
      require(!output, vars + ".idt", "the output layer cannot have idt");
      require(idt.numel() == out, vars + ".idt", "has the wrong length");
      arrays[p + "idt"] = {vars + ".idt", idt.reshape({out})};
    } else {
      arrays[p + "idt"] = {vars + ".idt", at::ones({out}, at::kDouble), true};
    }
  }
}

// The se_e2_a descriptor: our descriptor config and its arrays.
json read_descriptor(const Cursor& d, int64_t ntypes, Arrays& arrays) {
  const std::string type = d.at("type").as<std::string>();
  if (type != "se_e2_a" && type != "se_a")
    fail("{}: descriptor '{}' is not supported (only se_e2_a)", d.at("type").path, type);
  require(d.empty_list("exclude_types"), key_path(d, "exclude_types"), "exclude_types are not supported");
  require(!d.has("spin"), key_path(d, "spin"), "spin models are not supported");
  json config = {{"type", "se_e2_a"},
                 {"sel", d.at("sel").as<std::vector<int64_t>>()},
                 {"rcut", d.at("rcut").as<double>()},
                 {"rcut_smth", d.at("rcut_smth").as<double>()},
                 {"neuron", d.at("neuron").as<std::vector<int64_t>>()},
                 {"axis_neuron", d.at("axis_neuron").as<int64_t>()},
                 {"resnet_dt", d.value<bool>("resnet_dt", false)},
                 {"type_one_side", d.value<bool>("type_one_side", true)},
                 {"activation_function", d.value<std::string>("activation_function", "tanh")},
                 {"env_protection", d.value<double>("env_protection", 0.0)},
                 {"set_davg_zero", d.value<bool>("set_davg_zero", false)},
                 {"precision", d.value<std::string>("precision", "float64")}};
  const bool one_side = config["type_one_side"].get<bool>();
  const std::string activation = config["activation_function"].get<std::string>();

  const Cursor collection = d.at("embeddings");
  expect_class(collection, "NetworkCollection");
  const int64_t ndim = collection.at("ndim").as<int64_t>();
  require(ndim == (one_side ? 1 : 2), key_path(collection, "ndim"),
          "must be " + std::string(one_side ? "1 (type_one_side)" : "2 (type_one_side false)"));
  const Cursor networks = collection.at("networks");
  const int64_t count = one_side ? ntypes : ntypes * ntypes;
  require(static_cast<int64_t>(networks.size()) == count, networks.path,
          "has " + std::to_string(networks.size()) + " networks, expected " + std::to_string(count));
  for (int64_t k = 0; k < count; ++k) {
    const Cursor net = networks.at(static_cast<std::size_t>(k));
    require(!net.node.IsNull(), net.path, "missing network (excluded type pairs are not supported)");
    const std::string name = one_side ? std::to_string(k) : std::to_string(k % ntypes) + "_" + std::to_string(k / ntypes);
    read_network(net, "descriptor.embedding." + name + ".", activation, false, arrays);
  }
  for (const char* key : {"davg", "dstd"}) {
    const at::Tensor t = read_variable(d, key);
    require(t.defined(), d.path + ".@variables." + key, "is required");
    arrays[std::string("descriptor.") + key] = {d.path + ".@variables." + key, t};
  }
  return config;
}

// The energy fitting: our fitting_net config and its arrays; bias_atom_e into `bias`.
json read_fitting(const Cursor& f, int64_t ntypes, Arrays& arrays, at::Tensor& bias) {
  const std::string type = f.value<std::string>("type", "ener");
  require(type == "ener", key_path(f, "type"), "fitting '" + type + "' is not supported (only ener)");
  for (const char* key : {"numb_fparam", "numb_aparam", "dim_case_embd"})
    require(f.value<int64_t>(key, 0) == 0, key_path(f, key), "must be 0 (frame/atomic parameters and case embeddings are "
                                                      "not supported)");
  require(f.empty_list("exclude_types"), key_path(f, "exclude_types"), "exclude_types are not supported");
  require(f.empty_list("atom_ener"), key_path(f, "atom_ener"), "atom_ener is not supported");
  const Cursor collection = f.at("nets");
  expect_class(collection, "NetworkCollection");
  const int64_t ndim = collection.at("ndim").as<int64_t>();
  require(ndim == 0 || ndim == 1, key_path(collection, "ndim"), "must be 0 or 1");
  json config = {{"neuron", f.at("neuron").as<std::vector<int64_t>>()},
                 {"activation_function", f.value<std::string>("activation_function", "tanh")},
                 {"resnet_dt", f.value<bool>("resnet_dt", true)},
                 {"precision", f.value<std::string>("precision", "float64")}};
  if (ndim == 0) config["mixed_types"] = true;  // se_e2_a's default is one net per type
  const Cursor networks = collection.at("networks");
  const int64_t count = ndim == 0 ? 1 : ntypes;
  require(static_cast<int64_t>(networks.size()) == count, networks.path,
          "has " + std::to_string(networks.size()) + " networks, expected " + std::to_string(count));
  for (int64_t t = 0; t < count; ++t) {
    const Cursor net = networks.at(static_cast<std::size_t>(t));
    const int64_t out = net.value<int64_t>("out_dim", 1);
    require(out == 1, key_path(net, "out_dim"), "out_dim must be 1 for an energy fitting");
    read_network(net, "fitting.default.net." + std::to_string(t) + ".", config["activation_function"].get<std::string>(),
                 true, arrays);
  }
  const at::Tensor b = read_variable(f, "bias_atom_e");
  if (b.defined()) {
    require(b.numel() == ntypes, f.path + ".@variables.bias_atom_e", "must have one value per type");
    bias = bias + b.reshape({ntypes});
  }
  return config;
}

// Every parameter and buffer of `model` from `arrays`, shapes checked; no array may be left over.
void assign(EnergyModel& model, Arrays& arrays, const std::string& source) {
  auto fill = [&](const std::string& name, at::Tensor* t) {
    auto it = arrays.find(name);
    if (it == arrays.end()) fail("{}: no array for '{}' (the file's networks do not match its neuron lists)", source, name);
    const Array& a = it->second;
    if (a.value.sizes() != t->sizes())
      fail("{}: {} has shape {}, the model needs {}", source, a.path, fmt::join(a.value.sizes(), "x"),
           fmt::join(t->sizes(), "x"));
    at::NoGradGuard no_grad;
    t->copy_(a.value.to(t->scalar_type()));
    arrays.erase(it);
  };
  for (const auto& [name, t] : model.parameters().parameters()) fill(name, t);
  for (const auto& [name, t] : model.parameters().buffers()) fill(name, t);
  // Absent idt read as ones only matter where our layer has one.
  for (const auto& [name, a] : arrays)
    if (!a.implied)
      fail("{}: {} has no place in the model (check resnet_dt and neuron)", source, a.path);
}

}  // namespace

std::unique_ptr<EnergyModel> import_deepmd_model_text(const std::string& text, const std::string& source) {
  try {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      fail("not valid YAML: {}", e.what());
    }
    const Cursor m = Cursor{root, ""}.at("model");
    const std::string type = m.value<std::string>("type", "standard");
    require(type == "standard", key_path(m, "type"), "model type '" + type + "' is not supported (only standard)");
    for (const char* key : {"atom_exclude_types", "pair_exclude_types"})
      require(m.empty_list(key), key_path(m, key), "exclusions are not supported");
    const auto type_map = m.at("type_map").as<std::vector<std::string>>();
    const auto ntypes = static_cast<int64_t>(type_map.size());

    Arrays arrays;
    at::Tensor bias = at::zeros({ntypes}, at::kDouble);
    json section = {{"type_map", type_map},
                    {"descriptor", read_descriptor(m.at("descriptor"), ntypes, arrays)},
                    {"fitting_net", read_fitting(m.at("fitting"), ntypes, arrays, bias)}};
    if (m.has("@variables") && m.at("@variables").has("out_bias")) {
      const Cursor c = m.at("@variables").at("out_bias");
      const at::Tensor out_bias = read_array(c);
      require(out_bias.dim() == 3 && out_bias.size(0) == 1 && out_bias.size(1) == ntypes && out_bias.size(2) == 1, c.path,
              "must have shape 1 x ntypes x 1 (energy only)");
      bias = bias + out_bias.select(0, 0).select(1, 0);
    }
    arrays["bias.default"] = {"fitting.@variables.bias_atom_e + model.@variables.out_bias", bias};

    const json resolved = config::resolve(model_schema(), section, "model");
    auto result = std::make_unique<EnergyModel>(EnergyModel::single_task_config(resolved), 0);
    assign(*result, arrays, "model");
    return result;
  } catch (...) {
    rethrow_with_context(source);
  }
}

std::unique_ptr<EnergyModel> import_deepmd_model(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".dp" || ext == ".hlo")
    fail("{}: HDF5 (.dp) model files are not supported; write YAML with `dp convert-backend {} model.yaml`", path,
         path);
  if (ext != ".yaml" && ext != ".yml") fail("{}: expected a DeePMD-kit .yaml or .yml model file", path);
  return import_deepmd_model_text(read_file(path), path);
}

}  // namespace atomforge::model
