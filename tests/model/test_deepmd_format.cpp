// DeePMD-kit's backend-neutral model format: our se_e2_a models survive export + import
// unchanged, imported forces are -dE/dr, a file written by hand in DeePMD-kit's layout (from its
// serialize() code: NetworkCollection index ti + tj * ntypes, idt only on skip layers,
// energy bias = bias_atom_e + out_bias) evaluates to the plain-loop reference, and broken files
// are errors naming the key.
#include <cmath>
#include <functional>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "model/deepmd_format.hpp"
#include "model_test_util.hpp"
#include "se_e2_a_reference.hpp"

namespace atomforge::testing {
namespace {

using json = nlohmann::ordered_json;

model::Prediction predict(const model::EnergyModel& m, const data::System& s) {
  return m.evaluate(m.prepare(s, {0}), false);
}

std::unique_ptr<model::EnergyModel> rough_water_model(const json& extra) {
  const data::System s = single_frame("water/data_0", 1);
  auto m = small_model({"O", "H"}, {12, 24}, 3.5, extra);
  m->compute_statistics({s}, {1});
  m->fit_out_bias({data::read_deepmd_system(bundled("water/data_0"))});
  roughen(*m, 3.0);
  return m;
}

void expect_same_predictions(const model::EnergyModel& a, const model::EnergyModel& b, const data::System& s) {
  const auto pa = predict(a, s), pb = predict(b, s);
  const double e = pa.energy.item<double>();
  EXPECT_NEAR(pb.energy.item<double>(), e, 1e-12 * std::abs(e));
  EXPECT_LT((pa.force - pb.force).abs().max().item<double>(), 1e-12 * (1 + pa.force.abs().max().item<double>()));
  EXPECT_LT((pa.virial - pb.virial).abs().max().item<double>(), 1e-12 * (1 + pa.virial.abs().max().item<double>()));
}

class RoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(RoundTrip, ExportImportKeepsEnergyForcesVirial) {
  const bool one_side = GetParam();
  // Two-sided without resnet_dt covers layers without idt; one-sided with it covers idt.
  const auto original = rough_water_model({{"type_one_side", one_side}, {"resnet_dt", one_side}});
  const std::string text = model::export_deepmd_model_text(*original);
  const auto imported = model::import_deepmd_model_text(text, "exported.yaml");
  EXPECT_EQ(imported->type_map(), original->type_map());
  for (int64_t frame : {0, 3}) expect_same_predictions(*original, *imported, single_frame("water/data_0", frame));
  // Written again, the file is the same: nothing is lost or reinterpreted.
  EXPECT_EQ(model::export_deepmd_model_text(*imported), text);
}

INSTANTIATE_TEST_SUITE_P(TypeOneSide, RoundTrip, ::testing::Bool());

TEST(DeepmdFormat, ImportedForcesAreFiniteDifferences) {
  const auto imported =
      model::import_deepmd_model_text(model::export_deepmd_model_text(*rough_water_model({{"type_one_side", false}})), "m");
  data::System s = single_frame("water/data_0", 2);
  const at::Tensor force = predict(*imported, s).force.view({-1, 3});
  const double h = 1e-5;
  for (int64_t atom : {0, 1, 5}) {
    for (int d = 0; d < 3; ++d) {
      const double x = s.coord[3 * atom + d];
      s.coord[3 * atom + d] = x + h;
      const double up = energy_of(*imported, s);
      s.coord[3 * atom + d] = x - h;
      const double down = energy_of(*imported, s);
      s.coord[3 * atom + d] = x;
      EXPECT_NEAR(force[atom][d].item<double>(), -(up - down) / (2 * h), 1e-6) << "atom " << atom << " dim " << d;
    }
  }
}

// ---- A model written by hand in DeePMD-kit's layout ----

// Deterministic, distinct values for every array.
struct Filler {
  double phase;
  std::vector<double> next(int64_t n, double scale, double offset = 0.0) {
    std::vector<double> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(offset + scale * std::sin(phase += 0.7389));
    return v;
  }
};

json ndarray(const std::vector<double>& flat, const std::vector<int64_t>& shape) {
  std::function<json(std::size_t, std::size_t&)> nest = [&](std::size_t depth, std::size_t& at) -> json {
    json list = json::array();
    for (int64_t i = 0; i < shape[depth]; ++i) list.push_back(depth + 1 == shape.size() ? json(flat[at++]) : nest(depth + 1, at));
    return list;
  };
  std::size_t at = 0;
  return {{"@class", "np.ndarray"}, {"@is_variable", true}, {"@version", 1}, {"dtype", "float64"}, {"value", nest(0, at)}};
}

// A DeePMD-kit layer; `weights` gets the same arrays under our names for the reference.
json layer(int64_t in, int64_t out, bool idt, bool output, Filler& fill, Weights& weights, const std::string& name) {
  const auto w = fill.next(in * out, 0.8), b = fill.next(out, 0.3);
  json vars = {{"w", ndarray(w, {in, out})}, {"b", ndarray(b, {out})}, {"idt", nullptr}};
  weights.by_name[name + "w"] = at::tensor(w, at::kDouble).view({in, out});
  weights.by_name[name + "b"] = at::tensor(b, at::kDouble);
  if (idt) {
    const auto t = fill.next(out, 0.2, 0.5);
    vars["idt"] = ndarray(t, {out});
    weights.by_name[name + "idt"] = at::tensor(t, at::kDouble);
  }
  return {{"@class", "Layer"},
          {"@version", 2},
          {"bias", true},
          {"use_timestep", idt},
          {"activation_function", output ? "none" : "tanh"},
          {"resnet", !output},
          {"precision", "float64"},
          {"@variables", vars}};
}

struct HandWritten {
  json file;
  Weights weights;  // the same numbers under our names
};

// O/H water model, two-sided embeddings (1 -> 3 -> 6; idt only on the 3 -> 6 skip layer), axis 2,
// per-type fitting nets (12 -> 5 -> 5 -> 1; idt on the 5 -> 5 skip layer), both energy biases set.
HandWritten hand_written() {
  const int64_t nt = 2, nnei = 36;
  Filler fill{0.3};
  HandWritten out;
  Weights& w = out.weights;
  json embeddings = json::array();
  for (int64_t k = 0; k < nt * nt; ++k) {
    // DeePMD-kit's NetworkCollection: (centre ti, neighbour tj) is network ti + tj * ntypes.
    const std::string name = "descriptor.embedding." + std::to_string(k % nt) + "_" + std::to_string(k / nt) + ".";
    embeddings.push_back({{"@class", "EmbeddingNetwork"},
                          {"@version", 2},
                          {"in_dim", 1},
                          {"neuron", {3, 6}},
                          {"layers", {layer(1, 3, false, false, fill, w, name + "layers.0."),
                                      layer(3, 6, true, false, fill, w, name + "layers.1.")}}});
  }
  const auto davg = fill.next(nt * nnei * 4, 0.05), dstd = fill.next(nt * nnei * 4, 0.2, 0.6);
  w.by_name["descriptor.davg"] = at::tensor(davg, at::kDouble).view({nt, nnei, 4});
  w.by_name["descriptor.dstd"] = at::tensor(dstd, at::kDouble).view({nt, nnei, 4});
  json fitting_nets = json::array();
  for (int64_t t = 0; t < nt; ++t) {
    const std::string name = "fitting.default.net." + std::to_string(t) + ".";
    fitting_nets.push_back({{"@class", "FittingNetwork"},
                            {"@version", 1},
                            {"in_dim", 12},
                            {"out_dim", 1},
                            {"neuron", {5, 5}},
                            {"layers", {layer(12, 5, false, false, fill, w, name + "layers.0."),
                                        layer(5, 5, true, false, fill, w, name + "layers.1."),
                                        layer(5, 1, false, true, fill, w, name + "layers.2.")}}});
  }
  const std::vector<double> bias_atom_e = {-93.5, -187.25}, out_bias = {0.75, -1.5};
  w.by_name["bias.default"] = at::tensor(std::vector<double>{-93.5 + 0.75, -187.25 - 1.5}, at::kDouble);
  const json descriptor = {{"@class", "Descriptor"},
                           {"type", "se_e2_a"},
                           {"@version", 2},
                           {"rcut", 3.5},
                           {"rcut_smth", 1.5},
                           {"sel", {12, 24}},
                           {"neuron", {3, 6}},
                           {"axis_neuron", 2},
                           {"resnet_dt", true},
                           {"type_one_side", false},
                           {"exclude_types", json::array()},
                           {"env_protection", 0.0},
                           {"activation_function", "tanh"},
                           {"precision", "float64"},
                           {"spin", nullptr},
                           {"embeddings",
                            {{"@class", "NetworkCollection"},
                             {"@version", 1},
                             {"ndim", 2},
                             {"ntypes", nt},
                             {"network_type", "embedding_network"},
                             {"networks", embeddings}}},
                           {"@variables", {{"davg", ndarray(davg, {nt, nnei, 4})}, {"dstd", ndarray(dstd, {nt, nnei, 4})}}}};
  const json fitting = {{"@class", "Fitting"},
                        {"type", "ener"},
                        {"@version", 3},
                        {"neuron", {5, 5}},
                        {"resnet_dt", true},
                        {"numb_fparam", 0},
                        {"numb_aparam", 0},
                        {"activation_function", "tanh"},
                        {"precision", "float64"},
                        {"mixed_types", false},
                        {"exclude_types", json::array()},
                        {"nets",
                         {{"@class", "NetworkCollection"},
                          {"@version", 1},
                          {"ndim", 1},
                          {"ntypes", nt},
                          {"network_type", "fitting_network"},
                          {"networks", fitting_nets}}},
                        {"@variables", {{"bias_atom_e", ndarray(bias_atom_e, {nt, 1})}, {"case_embd", nullptr}}}};
  out.file = {{"software", "deepmd-kit"},
              {"backend", "PyTorch"},
              {"model",
               {{"@class", "Model"},
                {"type", "standard"},
                {"@version", 2},
                {"type_map", {"O", "H"}},
                {"descriptor", descriptor},
                {"fitting", fitting},
                {"atom_exclude_types", json::array()},
                {"pair_exclude_types", json::array()},
                {"@variables", {{"out_bias", ndarray(out_bias, {1, nt, 1})}, {"out_std", ndarray({1, 1}, {1, nt, 1})}}}}}};
  return out;
}

// JSON is YAML (flow style), so the test writes the tree with nlohmann::json.
std::unique_ptr<model::EnergyModel> import_json(const json& file) {
  return model::import_deepmd_model_text(file.dump(1), "hand.yaml");
}

TEST(DeepmdFormat, HandWrittenFileMatchesPlainLoopReference) {
  const HandWritten hw = hand_written();
  const auto m = import_json(hw.file);
  for (int64_t frame : {0, 4}) {
    const data::System s = single_frame("water/data_0", frame);
    const double expected = reference_energy(s, hw.weights, {12, 24}, 3.5, 1.5, 2, false);
    EXPECT_NEAR(energy_of(*m, s), expected, 1e-12 * std::abs(expected)) << "frame " << frame;
  }
}

TEST(DeepmdFormat, HandWrittenFileInBlockYaml) {
  // DeePMD-kit (PyYAML) writes block style; the same tree re-emitted that way reads the same.
  const HandWritten hw = hand_written();
  const auto flow = import_json(hw.file);
  const auto block = model::import_deepmd_model_text(model::export_deepmd_model_text(*flow), "block.yaml");
  expect_same_predictions(*flow, *block, single_frame("water/data_0", 0));
}

void expect_error(const std::function<void(json&)>& damage, const std::string& needle) {
  json file = hand_written().file;
  damage(file);
  try {
    import_json(file);
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hand.yaml"), std::string::npos) << e.what();
  }
}

TEST(DeepmdFormat, BrokenFilesNameTheKey) {
  expect_error([](json& f) { f["model"]["descriptor"].erase("rcut"); }, "model.descriptor.rcut");
  expect_error([](json& f) { f["model"]["descriptor"]["type"] = "se_e2_r"; }, "descriptor 'se_e2_r' is not supported");
  expect_error([](json& f) { f["model"]["descriptor"]["@variables"]["davg"]["value"][1].erase(0); },
               "model.descriptor.@variables.davg");
  expect_error([](json& f) { f["model"]["descriptor"]["@variables"]["dstd"] = ndarray({1, 1}, {2}); },
               "model.descriptor.@variables.dstd has shape 2");
  expect_error(
      [](json& f) {
        auto& w = f["model"]["fitting"]["nets"]["networks"][1]["layers"][0]["@variables"]["w"];
        w = ndarray(std::vector<double>(11 * 5, 0.1), {11, 5});
      },
      "model.fitting.nets.networks[1].layers[0].@variables.w");
  expect_error([](json& f) { f["model"]["fitting"]["numb_fparam"] = 2; }, "model.fitting.numb_fparam");
  expect_error([](json& f) { f["model"]["descriptor"]["exclude_types"] = {{0, 1}}; }, "model.descriptor.exclude_types");
  expect_error([](json& f) { f["model"]["descriptor"]["embeddings"]["networks"].erase(3); },
               "model.descriptor.embeddings.networks");
  expect_error([](json& f) { f.erase("model"); }, "missing key 'model'");
}

TEST(DeepmdFormat, ConvertCommandBothWays) {
  TempDir dir;
  const auto original = rough_water_model({{"type_one_side", true}});
  save_model(*original, dir / "ours.pth");
  const Result exported = run("convert " + (dir / "ours.pth") + " " + (dir / "model.yaml"));
  ASSERT_EQ(exported.code, 0) << exported.output;
  const Result imported = run("convert " + (dir / "model.yaml") + " " + (dir / "back.pth"));
  ASSERT_EQ(imported.code, 0) << imported.output;
  const auto back = load_model(dir / "back.pth");
  expect_same_predictions(*original, *back, single_frame("water/data_0", 1));
  const Result both_ours = run("convert " + (dir / "ours.pth") + " " + (dir / "copy.pth"));
  EXPECT_NE(both_ours.code, 0);
  EXPECT_NE(both_ours.output.find("DeePMD-kit .yaml"), std::string::npos) << both_ours.output;
}

TEST(DeepmdFormat, HdfFilesAreRefusedWithAWayOut) {
  try {
    model::import_deepmd_model("/nonexistent/model.dp");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dp convert-backend"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace atomforge::testing
