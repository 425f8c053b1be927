// `atomforge show`, `freeze`, `change-bias` and `test --model-branch` on multi-head models built
// here through the canonical config, checked against independent computations: parameter counts
// from the layer sizes, predictions of the multi-head model, a least-squares fit by normal equations.
#include <cmath>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../model/model_test_util.hpp"
#include "core/config_schema.hpp"
#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"
#include "model/parameters.hpp"
#include "model/registry.hpp"

namespace atomforge::testing {
namespace {

using nlohmann::ordered_json;

// DeePMD-kit's single-task `model` section, resolved (every default filled in).
ordered_json resolved_section(const std::vector<std::string>& type_map, const std::vector<int64_t>& sel) {
  const ordered_json section = {
      {"type_map", type_map},
      {"descriptor",
       {{"type", "se_e2_a"}, {"sel", sel}, {"rcut", 4.0}, {"rcut_smth", 0.5}, {"neuron", {4, 8, 16}},
        {"axis_neuron", 4}, {"resnet_dt", true}, {"seed", 1}}},
      {"fitting_net", {{"neuron", {16, 16}}, {"resnet_dt", true}, {"seed", 2}}}};
  return config::resolve(model::model_schema(), section);
}

// Two heads A and B for water: own fitting nets (fitA, fitB) or one fitting net shared with a
// one-hot task input (A: task 0, B: task 1). Biases differ per head.
std::unique_ptr<model::EnergyModel> two_head_water(bool shared) {
  ordered_json config = resolved_section({"O", "H"}, {24, 48});
  ordered_json fitting = config.at("fitting_net");
  config.erase("fitting_net");
  if (shared) {
    fitting["dim_case_embd"] = 2;
    config["fitting_nets"] = {{"shared", fitting}};
    config["heads"] = {{"A", {{"fitting", "shared"}, {"case", 0}}}, {"B", {{"fitting", "shared"}, {"case", 1}}}};
  } else {
    ordered_json other = fitting;
    other["seed"] = 5;
    config["fitting_nets"] = {{"fitA", fitting}, {"fitB", other}};
    config["heads"] = {{"A", {{"fitting", "fitA"}, {"case", 0}}}, {"B", {{"fitting", "fitB"}, {"case", 0}}}};
  }
  auto m = std::make_unique<model::EnergyModel>(config, 7);
  m->out_bias("A") = at::tensor({-93.5, -46.75}, at::kDouble);
  m->out_bias("B") = at::tensor({-90.25, -45.5}, at::kDouble);
  return m;
}

// What a trainer checkpoint holds besides the model: step, input, data-stream state, Adam state.
TensorFile checkpoint_of(const model::EnergyModel& m, int64_t step) {
  TensorFile file;
  m.save(file);
  file.meta["kind"] = "atomforge-checkpoint";
  file.meta["step"] = step;
  file.meta["input"] = {{"note", "made by test_model_tools"}};
  file.meta["train_data_state"] = {{"position", 17}};
  for (const auto& [name, tensor] : m.parameters().parameters()) {
    file.blobs["adam.m." + name] = model::to_blob(at::full_like(*tensor, 0.25));
    file.blobs["adam.v." + name] = model::to_blob(at::full_like(*tensor, 0.5));
  }
  file.meta["adam_step"] = step;
  return file;
}

std::string save_checkpoint(const TempDir& dir, const model::EnergyModel& m, const std::string& name,
                            int64_t step = 123) {
  save_tensor_file(dir / name, checkpoint_of(m, step));
  return dir / name;
}

// Values of an MLP as Mlp builds it: w, b and (with resnet_dt, hidden layers only) idt per layer.
int64_t mlp_count(int64_t in, const std::vector<int64_t>& widths, bool resnet_dt, int64_t linear_out) {
  int64_t n = 0;
  for (int64_t width : widths) {
    n += in * width + width + (resnet_dt ? width : 0);
    in = width;
  }
  if (linear_out > 0) n += in * linear_out + linear_out;
  return n;
}

int64_t count_under(const model::EnergyModel& m, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& [name, tensor] : m.parameters().parameters())
    if (name.rfind(prefix, 0) == 0) n += tensor->numel();
  return n;
}

// The number printed after `label` (a regex) in the parameter table of `show`.
int64_t table_count(const std::string& output, const std::string& label) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("\n  " + label + R"(\s+(\d+))"))) {
    ADD_FAILURE() << "no '" << label << "' count in:\n" << output;
    return -1;
  }
  return std::stoll(match[1]);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Predicted energies of the first `n` frames of `system` by one head.
std::vector<double> energies(const model::EnergyModel& m, const data::System& system, const std::string& head,
                             int64_t n) {
  std::vector<int64_t> frames;
  for (int64_t f = 0; f < n; ++f) frames.push_back(f);
  return values(m.evaluate(m.prepare(system, frames), head, false).energy);
}

// ---------------------------------------------------------------------------------------- show

TEST(ModelTools, ShowListsHeadsTypeMapCutoffAndParameterCounts) {
  TempDir dir;
  const auto m = two_head_water(false);
  const std::string ckpt = save_checkpoint(dir, *m, "two.ckpt.pt");
  const Result r = run("show " + ckpt);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "kind             : checkpoint")) << r.output;
  EXPECT_TRUE(contains(r.output, "format version   : 1")) << r.output;
  EXPECT_TRUE(contains(r.output, "precision        : float64")) << r.output;
  EXPECT_TRUE(contains(r.output, "type map         : O H")) << r.output;
  EXPECT_TRUE(contains(r.output, "cut-off          : 4 A")) << r.output;
  EXPECT_TRUE(contains(r.output, "descriptor type  : se_e2_a")) << r.output;
  EXPECT_TRUE(contains(r.output, "training step    : 123")) << r.output;
  EXPECT_TRUE(contains(r.output, "heads            : 2")) << r.output;
  EXPECT_TRUE(contains(r.output, "A: fitting net 'fitA', task index 0")) << r.output;
  EXPECT_TRUE(contains(r.output, "B: fitting net 'fitB', task index 0")) << r.output;
  EXPECT_TRUE(contains(r.output, "energy bias: O -93.5, H -46.75")) << r.output;
  EXPECT_TRUE(contains(r.output, "energy bias: O -90.25, H -45.5")) << r.output;

  // By hand: two embedding nets 1 -> 4 -> 8 -> 16 (type_one_side), and per type a fitting net
  // 64 (16 x axis_neuron 4) -> 16 -> 16 -> 1.
  const int64_t descriptor = 2 * mlp_count(1, {4, 8, 16}, true, 0);
  const int64_t fitting = 2 * mlp_count(64, {16, 16}, true, 1);
  EXPECT_EQ(descriptor, 440);
  EXPECT_EQ(table_count(r.output, "descriptor"), descriptor);
  EXPECT_EQ(table_count(r.output, "fitting net 'fitA'"), fitting);
  EXPECT_EQ(table_count(r.output, "fitting net 'fitB'"), fitting);
  EXPECT_EQ(table_count(r.output, "total"), descriptor + 2 * fitting);
  // And the same from the model's own parameter list.
  EXPECT_EQ(count_under(*m, "descriptor."), descriptor);
  EXPECT_EQ(count_under(*m, "fitting.fitA."), fitting);
  EXPECT_EQ(m->parameters().parameter_count(), descriptor + 2 * fitting);
}

TEST(ModelTools, ShowSharedFittingNetWithTaskIndices) {
  TempDir dir;
  const auto m = two_head_water(true);
  const Result r = run("show " + save_checkpoint(dir, *m, "shared.ckpt.pt"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "A: fitting net 'shared', task index 0")) << r.output;
  EXPECT_TRUE(contains(r.output, "B: fitting net 'shared', task index 1")) << r.output;
  // The one-hot task vector widens the fitting nets' input by 2.
  const int64_t fitting = 2 * mlp_count(64 + 2, {16, 16}, true, 1);
  EXPECT_EQ(table_count(r.output, "fitting net 'shared'"), fitting);
  EXPECT_EQ(count_under(*m, "fitting.shared."), fitting);
  EXPECT_EQ(table_count(r.output, "total"), m->parameters().parameter_count());
}

// -------------------------------------------------------------------------------------- freeze

TEST(ModelTools, FreezeHeadGivesExactlyTheMultiHeadPredictions) {
  const data::System water = data::read_deepmd_system(bundled("water/data_3"));
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "shared fitting net" : "own fitting nets");
    TempDir dir;
    const auto m = two_head_water(shared);
    const std::string ckpt = save_checkpoint(dir, *m, "two.ckpt.pt", 40);
    const Result r = run("freeze " + ckpt + " --head B -o " + (dir / "frozen.pth"));
    ASSERT_EQ(r.code, 0) << r.output;

    const TensorFile frozen = load_tensor_file(dir / "frozen.pth");
    EXPECT_EQ(frozen.meta.at("kind"), "atomforge-energy-model");
    EXPECT_EQ(frozen.meta.at("source").at("path"), ckpt);
    EXPECT_EQ(frozen.meta.at("source").at("step"), 40);
    EXPECT_FALSE(frozen.meta.contains("train_data_state"));
    EXPECT_FALSE(frozen.meta.contains("step"));
    for (const auto& [name, blob] : frozen.blobs) EXPECT_EQ(name.rfind("model.", 0), 0u) << name;
    EXPECT_FALSE(frozen.blobs.count("model.bias.A"));

    const auto single = model::EnergyModel::load(frozen, "frozen");
    ASSERT_EQ(single->heads(), std::vector<std::string>{"B"});
    const auto input = m->prepare(water, {0, 1, 2});
    const auto want = m->evaluate(input, "B", false);
    const auto got = single->evaluate(single->prepare(water, {0, 1, 2}), false);
    EXPECT_TRUE(at::equal(got.energy, want.energy));
    EXPECT_TRUE(at::equal(got.force, want.force));
    EXPECT_TRUE(at::equal(got.virial, want.virial));

    // Every inference path reads it without choosing a head.
    const Result test = run("test -m " + (dir / "frozen.pth") + " -s " + bundled("water/data_3") + " -n 2");
    EXPECT_EQ(test.code, 0) << test.output;
    const Result show = run("show " + (dir / "frozen.pth"));
    EXPECT_EQ(show.code, 0) << show.output;
    EXPECT_TRUE(contains(show.output, "kind             : model")) << show.output;
    EXPECT_TRUE(contains(show.output, "heads            : 1")) << show.output;
    EXPECT_TRUE(contains(show.output, "(step 40), head B")) << show.output;
    EXPECT_FALSE(contains(show.output, "optimiser state")) << show.output;
  }
}

TEST(ModelTools, FreezeNeedsHeadWhenThereAreSeveral) {
  TempDir dir;
  const std::string ckpt = save_checkpoint(dir, *two_head_water(false), "two.ckpt.pt");
  Result r = run("freeze " + ckpt + " -o " + (dir / "frozen.pth"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "A, B") && contains(r.output, "--head")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "frozen.pth"));

  r = run("freeze " + ckpt + " --head C -o " + (dir / "frozen.pth"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "no head 'C'") && contains(r.output, "A, B")) << r.output;

  // One head: --head may be omitted.
  TempDir single_dir;
  const auto single = two_head_water(false)->extract_head("A");
  const std::string one = save_checkpoint(single_dir, *single, "one.ckpt.pt");
  r = run("freeze " + one + " -o " + (single_dir / "frozen.pth"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(load_tensor_file(single_dir / "frozen.pth").meta.at("heads"), ordered_json({"A"}));
}

// ------------------------------------------------------------------------- test --model-branch

TEST(ModelTools, TestModelBranchEvaluatesTheChosenHead) {
  TempDir dir;
  const auto m = two_head_water(true);
  const std::string ckpt = save_checkpoint(dir, *m, "two.ckpt.pt");
  const data::System water = data::read_deepmd_system(bundled("water/data_3"));
  std::map<std::string, std::vector<double>> printed;
  for (const std::string head : {"A", "B"}) {
    const Result r = run("test -m " + ckpt + " -s " + bundled("water/data_3") + " -n 3 --model-branch " + head +
                         " -d " + (dir / head));
    ASSERT_EQ(r.code, 0) << r.output;
    printed[head] = predicted_columns(dir / (head + ".e.out"), 1);
    const auto want = energies(*m, water, head, 3);
    ASSERT_EQ(printed[head].size(), want.size());
    for (std::size_t f = 0; f < want.size(); ++f) EXPECT_NEAR(printed[head][f], want[f], 1e-9 * std::abs(want[f]));
  }
  for (std::size_t f = 0; f < 3; ++f) EXPECT_GT(std::abs(printed["A"][f] - printed["B"][f]), 1.0);

  Result r = run("test -m " + ckpt + " -s " + bundled("water/data_3") + " -n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "A, B") && contains(r.output, "--model-branch")) << r.output;
  r = run("test -m " + ckpt + " -s " + bundled("water/data_3") + " -n 1 --head Z");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "no head 'Z'") && contains(r.output, "A, B")) << r.output;
}

// --------------------------------------------------------------------------------- change-bias

// Molecules of four compositions (H2O, CH4, CH3OH, C2H6): the counts of C, H and O have full
// rank, so the least-squares bias of C, H, O is unique; N never occurs (minimum norm: 0).
TEST(ModelTools, ChangeBiasRecoversTheLeastSquaresFitOfAShiftedModel) {
  TempDir dir;
  const std::vector<std::string> type_map = {"C", "H", "N", "O"};
  auto m = std::make_unique<model::EnergyModel>(
      model::EnergyModel::single_task_config(resolved_section(type_map, {8, 8, 8, 8})), 7);
  std::vector<data::System> systems;
  for (const std::string name : {"H2O", "CH4", "CH3OH", "C2H6"})
    systems.push_back(data::read_deepmd_system(bundled("mf/gfn2/train/" + name)));

  // Independent fit: normal equations over C, H, O of (label - prediction without bias).
  at::Tensor ata = at::zeros({3, 3}, at::kDouble), atb = at::zeros({3}, at::kDouble);
  const int columns[3] = {0, 1, 3};
  for (const auto& s : systems) {
    std::vector<double> count(4, 0.0);
    for (int32_t t : data::map_types(s, type_map)) count[t] += 1.0;
    const at::Tensor row = at::tensor({count[0], count[1], count[3]}, at::kDouble);
    const auto pred = energies(*m, s, "default", s.nframes);  // bias is still zero
    for (int64_t f = 0; f < s.nframes; ++f) {
      ata += at::outer(row, row);
      atb += row * (s.energy[f] - pred[f]);
    }
  }
  const auto expected = values(at::linalg_solve(ata, atb));

  // Shift the bias by a constant per element; the re-fit must not depend on it.
  m->out_bias() = at::tensor({1.5, -2.25, 0.75, 3.0}, at::kDouble);
  save_model(*m, dir / "shifted.pth");
  const Result r = run("change-bias " + (dir / "shifted.pth") + " -s " + bundled("mf/gfn2/train") + " -o " +
                       (dir / "fitted.pth"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "1.5000000000") && contains(r.output, "-2.2500000000")) << r.output;

  const TensorFile fitted = load_tensor_file(dir / "fitted.pth");
  EXPECT_EQ(fitted.meta.at("kind"), "atomforge-energy-model");
  const auto after = model::EnergyModel::load(fitted, "fitted");
  const auto bias = values(after->out_bias());
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(bias[columns[k]], expected[k], 1e-6) << type_map[columns[k]];
  EXPECT_NEAR(bias[2], 0.0, 1e-9) << "N occurs in no system: minimum norm gives 0";
  EXPECT_TRUE(contains(r.output, fmt::format("{:.10f}", bias[1]))) << r.output;

  // Least squares: the residuals are orthogonal to every element's count column.
  std::vector<double> weighted(4, 0.0);
  double scale = 0;
  for (const auto& s : systems) {
    const auto pred = energies(*after, s, "default", s.nframes);
    for (int64_t f = 0; f < s.nframes; ++f) {
      for (int32_t t : data::map_types(s, type_map)) weighted[t] += s.energy[f] - pred[f];
      scale += std::abs(s.energy[f]);
    }
  }
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(weighted[t], 0.0, 1e-9 * scale) << type_map[t];
}

// Water has one composition (64 O, 128 H): the fit is rank-deficient and the minimum-norm
// solution is proportional to the counts. A checkpoint stays a checkpoint: only the bias changes.
TEST(ModelTools, ChangeBiasOnCheckpointKeepsEverythingElse) {
  TempDir dir;
  auto m = two_head_water(false);
  m->out_bias("B") = m->out_bias("B") + at::tensor({7.0, -3.0}, at::kDouble);
  const std::string ckpt = save_checkpoint(dir, *m, "two.ckpt.pt");
  const Result r = run("change-bias " + ckpt + " -s " + bundled("water/data_0") + " " + bundled("water/data_3") +
                       " --model-branch B -o " + (dir / "fitted.ckpt.pt"));
  ASSERT_EQ(r.code, 0) << r.output;

  const TensorFile before = load_tensor_file(ckpt), after = load_tensor_file(dir / "fitted.ckpt.pt");
  EXPECT_EQ(after.meta, before.meta) << "kind, step, input, data-stream and Adam state unchanged";
  ASSERT_EQ(after.blobs.size(), before.blobs.size());
  for (const auto& [name, blob] : before.blobs) {
    if (name == "model.bias.B") continue;
    EXPECT_EQ(after.blobs.at(name).bytes, blob.bytes) << name;
  }
  const auto fitted = model::EnergyModel::load(after, "fitted");
  const auto bias = values(fitted->out_bias("B"));
  EXPECT_NEAR(bias[0] * 128.0 - bias[1] * 64.0, 0.0, 1e-9 * std::abs(bias[1])) << "minimum norm: b ~ (64, 128)";
  EXPECT_EQ(values(fitted->out_bias("A")), values(m->out_bias("A")));

  // Least squares with one composition: the mean energy error over all frames is zero.
  double error = 0, scale = 0;
  int64_t frames = 0;
  for (const std::string name : {"water/data_0", "water/data_3"}) {
    const data::System s = data::read_deepmd_system(bundled(name));
    const auto pred = energies(*fitted, s, "B", s.nframes);
    for (int64_t f = 0; f < s.nframes; ++f, ++frames) {
      error += s.energy[f] - pred[f];
      scale += std::abs(s.energy[f]);
    }
  }
  EXPECT_NEAR(error / frames, 0.0, 1e-10 * scale / frames);

  const Result no_branch = run("change-bias " + ckpt + " -s " + bundled("water/data_3") + " -o " + (dir / "x.pt"));
  EXPECT_NE(no_branch.code, 0);
  EXPECT_TRUE(contains(no_branch.output, "A, B") && contains(no_branch.output, "--model-branch")) << no_branch.output;
  const Result unknown =
      run("change-bias " + ckpt + " -s " + bundled("water/data_3") + " --model-branch Q -o " + (dir / "x.pt"));
  EXPECT_NE(unknown.code, 0);
  EXPECT_TRUE(contains(unknown.output, "no head 'Q'") && contains(unknown.output, "A, B")) << unknown.output;
  EXPECT_FALSE(fs::exists(dir / "x.pt"));
}

// ------------------------------------------------------------------------------------- errors

TEST(ModelTools, CorruptFilesAreErrorsNamingTheFile) {
  TempDir dir;
  write_text(dir / "garbage.pth", "this is not a model file at all, just some text");
  const std::string good = save_checkpoint(dir, *two_head_water(false), "good.ckpt.pt");
  std::string bytes = read_text(good);
  write_text(dir / "truncated.pth", bytes.substr(0, bytes.size() / 2));
  bytes[bytes.size() / 2] ^= 0x5a;
  write_text(dir / "flipped.pth", bytes);

  for (const std::string name : {"garbage.pth", "truncated.pth", "flipped.pth"}) {
    const std::string path = dir / name;
    for (const std::string& command :
         {"show " + path, "freeze " + path + " --head A -o " + (dir / "out.pth"),
          "change-bias " + path + " -s " + bundled("water/data_3") + " --model-branch A -o " + (dir / "out.pth"),
          "test -m " + path + " -s " + bundled("water/data_3") + " --model-branch A"}) {
      const Result r = run(command);
      EXPECT_EQ(r.code, 1) << command << "\n" << r.output;
      EXPECT_TRUE(contains(r.output, path)) << command << "\n" << r.output;
      EXPECT_FALSE(contains(r.output, "terminate")) << r.output;
    }
  }
  EXPECT_FALSE(fs::exists(dir / "out.pth"));
}

}  // namespace
}  // namespace atomforge::testing
