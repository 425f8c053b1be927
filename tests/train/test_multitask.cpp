// Multi-task training and fine-tuning: task sampling, the weighted objective, tasks whose energy
// zeros differ by 100 eV/atom, transfer from a pre-trained branch, the bias re-fit, type maps
// matched by element name, DeePMD-kit's own example input, and malformed inputs.
#include <cmath>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "../cli_test_util.hpp"
#include "core/config_schema.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"
#include "model/registry.hpp"
#include "train/energy_loss.hpp"
#include "core/tensor_file.hpp"
#include "train/task_sampler.hpp"

namespace atomforge::testing {
namespace {

using json = nlohmann::ordered_json;

TEST(TaskSampling, FrequenciesMatchModelProb) {
  const std::vector<double> weights = {0.2, 0.5, 0.3};
  const int n = 30000;
  std::vector<int> counts(3, 0);
  for (int step = 0; step < n; ++step) ++counts.at(train::draw_task(10, step, weights));
  for (int k = 0; k < 3; ++k) {
    const double sigma = std::sqrt(n * weights[k] * (1 - weights[k]));
    EXPECT_LT(std::abs(counts[k] - n * weights[k]), 5 * sigma) << "task " << k;
  }
  // The draw is a function of (seed, step): the same again, different for another seed.
  int same = 0;
  for (int step = 0; step < 1000; ++step) same += train::draw_task(10, step, weights) == train::draw_task(11, step, weights);
  EXPECT_LT(same, 800);
}

// Mode "all" minimises sum_t w_t L_t: its gradient is the weighted sum of the tasks' gradients.
TEST(MultiTaskObjective, GradientIsWeightedSumOfTaskGradients) {
  json section = {{"type_map", {"C", "H", "N", "O"}},
                  {"descriptor", {{"type", "se_e2_a"}, {"sel", {4, 8, 2, 4}}, {"rcut", 4.0}, {"neuron", {4, 8}}}},
                  {"fitting_net", {{"neuron", {8, 8}}}}};
  json config = model::EnergyModel::single_task_config(config::resolve(model::model_schema(), section));
  config["fitting_nets"] = {{"a", config["fitting_nets"]["default"]}, {"b", config["fitting_nets"]["default"]}};
  config["heads"] = {{"a", {{"fitting", "a"}, {"case", 0}}}, {"b", {{"fitting", "b"}, {"case", 0}}}};
  model::EnergyModel m(config, 5);
  const data::System sa = data::read_deepmd_system(bundled("mf/gfn2/train/CH3OH"));
  const data::System sb = data::read_deepmd_system(bundled("mf/gfn1/train/C2H6"));
  m.compute_statistics({sa, sb}, {4, 4});
  m.fit_out_bias("a", {sa});
  m.fit_out_bias("b", {sb});
  const json loss_config = {{"start_pref_e", 0.02}, {"limit_pref_e", 1.0}, {"start_pref_f", 1000.0},
                            {"limit_pref_f", 1.0},  {"start_pref_v", 0.0},  {"limit_pref_v", 0.0}};
  train::EnergyLoss loss(loss_config, 1e-3);
  auto task_loss = [&](const data::System& s, const std::string& head) {
    const std::vector<int64_t> frames = {0, 1, 2};
    return loss(m.evaluate(m.prepare(s, frames), head, true), train::make_labels(s, frames, at::kDouble), s.natoms(), 5e-4)
        .loss;
  };
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : m.parameters().parameters()) params.push_back(*t);
  auto grads = [&](const at::Tensor& l) {
    auto g = torch::autograd::grad({l}, params, {}, false, false, /*allow_unused=*/true);
    for (std::size_t k = 0; k < g.size(); ++k)
      if (!g[k].defined()) g[k] = at::zeros_like(params[k]);
    return g;
  };
  const double wa = 0.3, wb = 0.7;
  const auto ga = grads(task_loss(sa, "a")), gb = grads(task_loss(sb, "b"));
  const auto g = grads(wa * task_loss(sa, "a") + wb * task_loss(sb, "b"));
  double max_error = 0, max_grad = 0;
  for (std::size_t k = 0; k < g.size(); ++k) {
    max_error = std::max(max_error, (g[k] - (wa * ga[k] + wb * gb[k])).abs().max().item<double>());
    max_grad = std::max(max_grad, g[k].abs().max().item<double>());
  }
  EXPECT_GT(max_grad, 0.0);
  EXPECT_LT(max_error, 1e-10 * max_grad);
}

// Per-atom energy RMSE on `valid` of the best per-element reference energies fitted to `train`
// (least squares on element counts): what a model that learned nothing beyond a bias achieves.
double reference_fit_rmse(const std::string& train, const std::string& valid) {
  auto rows = [](const std::string& root, std::vector<double>& counts, std::vector<double>& energies,
                 std::vector<double>& natoms) {
    for (const auto& path : data::find_systems(root)) {
      const data::System s = data::read_deepmd_system(path);
      std::vector<double> row(4, 0.0);  // C H N O, the systems' shared type map
      for (int32_t t : s.types) row[t] += 1;
      for (int64_t f = 0; f < s.nframes; ++f) {
        counts.insert(counts.end(), row.begin(), row.end());
        energies.push_back(s.energy[f]);
        natoms.push_back(static_cast<double>(s.natoms()));
      }
    }
  };
  std::vector<double> a, b, n, va, vb, vn;
  rows(train, a, b, n);
  rows(valid, va, vb, vn);
  const auto A = at::from_blob(a.data(), {static_cast<int64_t>(b.size()), 4}, at::kDouble);
  const auto B = at::from_blob(b.data(), {static_cast<int64_t>(b.size()), 1}, at::kDouble);
  const auto x = at::matmul(at::linalg_pinv(A), B);
  const auto VA = at::from_blob(va.data(), {static_cast<int64_t>(vb.size()), 4}, at::kDouble);
  const auto VB = at::from_blob(vb.data(), {static_cast<int64_t>(vb.size()), 1}, at::kDouble);
  const auto VN = at::from_blob(vn.data(), {static_cast<int64_t>(vb.size()), 1}, at::kDouble);
  return ((at::matmul(VA, x) - VB) / VN).square().mean().sqrt().item<double>();
}

// Two tasks on the same molecules whose energy zeros differ by 100 eV/atom train together (mode
// "all"). Converged means: each task's validation energy error falls below half its first-step
// value and to within twice that of the best per-element reference energies (the bias-only
// model, ~0.03 eV/atom here) -- the offset fully absorbed; one shared bias would leave ~50 eV/atom.
TEST(MultiTaskTraining, TasksWithEnergyZeros100eVPerAtomApartBothConverge) {
  TempDir dir;
  for (const std::string& split : {"train", "valid"}) {
    for (const auto& path : data::find_systems(bundled("mf/gfn1/" + split))) {
      data::System s = data::read_deepmd_system(path);
      for (auto& e : s.energy) e += 100.0 * static_cast<double>(s.natoms());
      data::write_deepmd_system(dir / ("shifted/" + split + "/" + fs::path(path).filename().string()), s);
    }
  }
  auto input = multitask_example_input(bundled("mf/gfn1/train"), bundled("mf/gfn1/valid"), dir / "shifted/train",
                                       dir / "shifted/valid");
  input["training"]["multi_task_mode"] = "all";
  input["training"]["numb_steps"] = 800;
  input["training"]["disp_freq"] = 100;
  // Energies are the point here: weight them from the start (DeePMD's default starts at 0.02).
  for (auto& loss : input["loss_dict"])
    loss.update(json{{"start_pref_e", 1}, {"limit_pref_e", 1}, {"start_pref_f", 10}, {"limit_pref_f", 1}});
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  const double reference = reference_fit_rmse(bundled("mf/gfn1/train"), bundled("mf/gfn1/valid"));
  const double shifted_reference = reference_fit_rmse(dir / "shifted/train", dir / "shifted/valid");
  EXPECT_NEAR(shifted_reference, reference, 1e-6) << "the offset is exactly linear in atom counts";
  for (const std::string& task : {"gfn1", "gfnff"}) {
    const double first = lcurve_value(dir / "out/lcurve.out", "rmse_e_val_" + task, true);
    const double last = lcurve_value(dir / "out/lcurve.out", "rmse_e_val_" + task);
    EXPECT_LT(last, 0.5 * first) << task;
    EXPECT_LT(last, 2.0 * reference) << task << ": reference fit " << reference;
  }
}

// Pre-train on GFN1 and GFN-FF, then fine-tune on GFN1 data: starting from the GFN1 branch is
// already accurate at the first step; a fresh head (RANDOM) is not.
TEST(FineTuning, BranchStartsBelowRandomOnSameFidelity) {
  TempDir dir;
  auto input = multitask_example_input();
  input["training"]["numb_steps"] = 500;
  const Result pre = train(dir, input, "pre");
  ASSERT_EQ(pre.code, 0) << pre.output;
  // Mode sample reports how many steps each task got: the draws of (seed, step), counted here.
  int gfn1_steps = 0;
  for (int step = 0; step < 500; ++step) gfn1_steps += train::draw_task(7, step, {0.5, 0.5}) == 0;
  EXPECT_NE(pre.output.find(fmt::format("gfn1 {} (", gfn1_steps)), std::string::npos) << pre.output;
  EXPECT_NE(pre.output.find(fmt::format("gfnff {} (", 500 - gfn1_steps)), std::string::npos) << pre.output;

  auto fine = json::parse(read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/examples/multitask/finetune.json"));
  fine["training"]["training_data"]["systems"] = bundled("mf/gfn1/train");
  fine["training"]["validation_data"]["systems"] = bundled("mf/gfn1/valid");
  fine["learning_rate"]["start_lr"] = 1e-9;  // the first row then shows the starting model
  fine["learning_rate"]["stop_lr"] = 1e-9;
  fine["training"]["numb_steps"] = 1;
  write_text(dir / "fine.json", fine.dump());
  std::map<std::string, double> first_force_error;
  for (const std::string& branch : {"gfn1", "RANDOM"}) {
    const Result r = run("train " + (dir / "fine.json") + " -o " + (dir / branch) + " --finetune " +
                         (dir / "pre/model.ckpt.pt") + " --model-branch " + branch);
    ASSERT_EQ(r.code, 0) << r.output;
    first_force_error[branch] = lcurve_value(dir / (branch + "/lcurve.out"), "rmse_f_val");
  }
  EXPECT_LT(first_force_error["gfn1"], 0.6 * first_force_error["RANDOM"]);
  // An unknown branch names the heads there are.
  const Result bad = run("train " + (dir / "fine.json") + " -o " + (dir / "bad") + " --finetune " +
                         (dir / "pre/model.ckpt.pt") + " --model-branch gfn3");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("gfn1, gfnff"), std::string::npos) << bad.output;
}

// Re-fitting the bias to data shifted by c eV per atom shifts every prediction by exactly c per atom.
TEST(FineTuning, BiasRefitAloneRemovesConstantOffset) {
  json section = {{"type_map", {"C", "H", "N", "O"}},
                  {"descriptor", {{"type", "se_e2_a"}, {"sel", {4, 8, 2, 4}}, {"rcut", 4.0}, {"neuron", {4, 8}}}},
                  {"fitting_net", {{"neuron", {8, 8}}}}};
  model::EnergyModel m(model::EnergyModel::single_task_config(config::resolve(model::model_schema(), section)), 3);
  std::vector<data::System> systems, shifted;
  for (const auto& path : data::find_systems(bundled("mf/gfn2/train"))) systems.push_back(data::read_deepmd_system(path));
  const double c = 3.25;
  for (auto s : systems) {
    for (auto& e : s.energy) e += c * static_cast<double>(s.natoms());
    shifted.push_back(s);
  }
  m.compute_statistics(systems, std::vector<int64_t>(systems.size(), 4));
  m.fit_out_bias("default", systems, true);
  std::vector<double> before;
  for (const auto& s : systems) before.push_back(m.evaluate(m.prepare(s, {0, 1}), false).energy[1].item<double>());
  m.fit_out_bias("default", shifted, true);
  for (std::size_t k = 0; k < systems.size(); ++k) {
    const double after = m.evaluate(m.prepare(systems[k], {0, 1}), false).energy[1].item<double>();
    EXPECT_NEAR(after - before[k], c * static_cast<double>(systems[k].natoms()), 1e-8) << systems[k].path;
  }
}

// Data whose type map lists the elements in another order, and a model type map that is a subset
// of the pre-trained one: atoms are matched by element name, so predictions are unchanged.
TEST(FineTuning, PermutedAndSubsetTypeMapsGiveTheSamePredictions) {
  TempDir dir;
  auto input = multitask_example_input();
  input["training"]["numb_steps"] = 20;
  ASSERT_EQ(train(dir, input, "pre").code, 0);

  // CH3OH with type_map [O, C, H] (the original is [C, H, N, O]).
  data::System s = data::read_deepmd_system(bundled("mf/gfn1/train/CH3OH"));
  const std::vector<std::string> original = s.type_map;
  s.type_map = {"O", "C", "H"};
  for (auto& t : s.types) t = static_cast<int32_t>(std::find(s.type_map.begin(), s.type_map.end(), original[t]) - s.type_map.begin());
  data::write_deepmd_system(dir / "permuted/CH3OH", s);

  auto fine = json::parse(read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/examples/multitask/finetune.json"));
  fine["model"]["type_map"] = {"O", "H", "C"};  // a subset, in another order
  fine["model"]["descriptor"]["sel"] = {4, 8, 2};
  fine["training"]["training_data"]["systems"] = dir / "permuted";
  fine["training"].erase("validation_data");
  fine["training"]["numb_steps"] = 3;
  const Result r = train(dir, fine, "fine", " --finetune " + (dir / "pre/model.ckpt.pt") + " --model-branch gfn1");
  ASSERT_EQ(r.code, 0) << r.output;
  const Result on_original = run("test -m " + (dir / "fine/model.ckpt.pt") + " -s " + bundled("mf/gfn1/train/CH3OH"));
  const Result on_permuted = run("test -m " + (dir / "fine/model.ckpt.pt") + " -s " + (dir / "permuted/CH3OH"));
  ASSERT_EQ(on_permuted.code, 0) << on_permuted.output;
  const auto metrics = [](const std::string& out) { return out.substr(out.find("number of test data")); };
  EXPECT_EQ(metrics(on_original.output), metrics(on_permuted.output));

  fine["model"]["type_map"] = {"O", "H", "Cu"};
  const Result bad = train(dir, fine, "bad", " --finetune " + (dir / "pre/model.ckpt.pt") + " --model-branch gfn1");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("cannot take new elements (Cu)"), std::string::npos) << bad.output;
}

// A graph trunk pre-trained on water alone fine-tunes to molecules with carbon: carbon joins the
// type map, the pre-trained model's predictions for the old elements are kept exactly, and the
// fine-tuned model learns the new data.
TEST(FineTuning, GraphTrunkTakesNewElements) {
  TempDir dir;
  auto pre = json::parse(read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/examples/graph/painn.json"));
  pre["model"]["type_map"] = {"H", "O"};
  pre["training"]["training_data"]["systems"] = bundled("mf/gfn2/train/H2O");
  pre["training"]["validation_data"]["systems"] = bundled("mf/gfn2/valid/H2O");
  pre["training"]["numb_steps"] = 20;
  const Result pretrained = train(dir, pre, "pre");
  ASSERT_EQ(pretrained.code, 0) << pretrained.output;

  const auto old_model = model::EnergyModel::load(load_tensor_file(dir / "pre/model.ckpt.pt"), "pre");
  const auto extended = old_model->with_elements({"C"}, 1);
  EXPECT_EQ(extended->type_map(), (std::vector<std::string>{"H", "O", "C"}));
  const data::System water = data::read_deepmd_system(bundled("mf/gfn2/valid/H2O"));
  const auto before = old_model->evaluate(old_model->prepare(water, {0, 1}), false);
  const auto after = extended->evaluate(extended->prepare(water, {0, 1}), false);
  EXPECT_LT((after.energy - before.energy).abs().max().item<double>(), 1e-12);
  EXPECT_LT((after.force - before.force).abs().max().item<double>(), 1e-12);

  auto fine = pre;
  fine["model"]["type_map"] = {"C", "H", "O"};
  fine["training"]["training_data"]["systems"] = bundled("mf/gfn2/train");
  fine["training"]["validation_data"]["systems"] = bundled("mf/gfn2/valid");
  fine["training"]["numb_steps"] = 200;
  const Result r = train(dir, fine, "fine", " --finetune " + (dir / "pre/model.ckpt.pt"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("new elements C join"), std::string::npos) << r.output;
  const double first = lcurve_value(dir / "fine/lcurve.out", "rmse_f_val", true);
  const double last = lcurve_value(dir / "fine/lcurve.out", "rmse_f_val");
  EXPECT_LT(last, 0.7 * first);
  const Result show = run("show " + (dir / "fine/model.ckpt.pt"));
  EXPECT_NE(show.output.find("type map         : H O C"), std::string::npos) << show.output;
}

TEST(MultiTaskTraining, RestartContinuesBitForBit) {
  TempDir dir;
  auto input = multitask_example_input();
  input["training"]["numb_steps"] = 40;
  input["training"]["disp_freq"] = 5;
  input["training"]["save_freq"] = 20;
  expect_resumed_run_is_bit_for_bit(dir, input, 20, 40);
}

// One fitting net in shared_dict serves both fidelities, told apart by a one-hot task input: the
// model has a single fitting net, the heads still predict differently, and both tasks learn.
TEST(MultiTaskTraining, SharedFittingNetWithTaskInput) {
  TempDir dir;
  auto input = multitask_example_input();
  input["model"]["shared_dict"]["fidelity_fit"] = {{"neuron", {32, 32}}, {"seed", 2}};
  for (const char* task : {"gfn1", "gfnff"}) input["model"]["model_dict"][task]["fitting_net"] = "fidelity_fit";
  input["training"]["numb_steps"] = 300;
  input["training"]["disp_freq"] = 100;
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto model = model::EnergyModel::load(load_tensor_file(dir / "out/model.ckpt.pt"), "ckpt");
  EXPECT_EQ(model->config().at("fitting_nets").size(), 1u);
  EXPECT_EQ(model->config().at("fitting_nets").at("fidelity_fit").at("dim_case_embd"), 2);
  const data::System s = data::read_deepmd_system(bundled("mf/gfn1/valid/CH3OH"));
  const auto input_frames = model->prepare(s, {0});
  // Different biases would make any two heads differ; compare the fitting net's output alone.
  const double e1 = (model->evaluate(input_frames, "gfn1", false).energy -
                     (model->out_bias("gfn1").index_select(0, input_frames.atype)).sum()).item<double>();
  const double e2 = (model->evaluate(input_frames, "gfnff", false).energy -
                     (model->out_bias("gfnff").index_select(0, input_frames.atype)).sum()).item<double>();
  EXPECT_GT(std::abs(e1 - e2), 1e-6) << "the task input changes the fitting net's output";
  for (const std::string& task : {"gfn1", "gfnff"})
    EXPECT_LT(lcurve_value(dir / "out/lcurve.out", "rmse_f_val_" + task),
              lcurve_value(dir / "out/lcurve.out", "rmse_f_val_" + task, true))
        << task;
}

// DeePMD-kit's multi-task example (seed document, verbatim but for data paths and step count).
TEST(MultiTaskInput, DeepmdKitExampleTrains) {
  if (!shared_data_present()) GTEST_SKIP() << "needs ../shared/data (the benchmark data beside the clone)";
  TempDir dir;
  std::string text = read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/tests/train/fixtures/seed_multitask_input.json");
  text = std::regex_replace(text, std::regex(R"(\.\./\.\./water/data/)"),
                            std::string(ATOMFORGE_SHARED_DATA) + "/deepmd-examples/water/");
  auto input = json::parse(text);
  input["training"]["numb_steps"] = 2;
  const Result r = train(dir, input, "out");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string lcurve = read_text(dir / "out/lcurve.out");
  for (const char* column : {"rmse_e_val_water_1", "rmse_f_trn_water_1", "rmse_f_trn_water_2"})
    EXPECT_NE(lcurve.find(column), std::string::npos) << lcurve;
  EXPECT_EQ(lcurve.find("rmse_f_val_water_2"), std::string::npos) << "water_2 has no validation data";
}

class MalformedMultiTask : public ::testing::Test {
 protected:
  json input = multitask_example_input();
  void expect_error(const std::vector<std::string>& parts) {
    const Result r = train(dir, input, "out");
    EXPECT_NE(r.code, 0);
    for (const auto& part : parts) EXPECT_NE(r.output.find(part), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir.path / "out"));
  }
  TempDir dir;
};

TEST_F(MalformedMultiTask, TaskMissingFromLossDict) {
  input["loss_dict"].erase("gfnff");
  expect_error({"loss_dict", "no entry for task 'gfnff'"});
}
TEST_F(MalformedMultiTask, UnknownSharedKey) {
  input["model"]["model_dict"]["gfn1"]["descriptor"] = "trunk2";
  expect_error({"model.model_dict.gfn1.descriptor", "'trunk2'", "not in model.shared_dict"});
}
TEST_F(MalformedMultiTask, ModelProbForUnknownTask) {
  input["training"]["model_prob"]["gfn3"] = 0.2;
  expect_error({"training.model_prob.gfn3", "no task 'gfn3'"});
}
TEST_F(MalformedMultiTask, TasksWithDifferentDescriptors) {
  input["model"]["model_dict"]["gfnff"]["descriptor"] = input["model"]["shared_dict"]["trunk"];
  expect_error({"model.model_dict.gfnff.descriptor", "same model.shared_dict descriptor"});
}

}  // namespace
}  // namespace atomforge::testing
