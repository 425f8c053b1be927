// `atomforge test` against an independent computation of the same errors from the model's
// predictions and the npy labels.
#include <cmath>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::testing {
namespace {

double printed(const std::string& output, const std::string& label, int occurrence = 0) {
  const std::regex pattern(label + R"(\s*:\s*([-+0-9.eE]+))");
  auto it = std::sregex_iterator(output.begin(), output.end(), pattern);
  for (int k = 0; k < occurrence; ++k) ++it;
  if (it == std::sregex_iterator()) {
    ADD_FAILURE() << "no '" << label << "' in output:\n" << output;
    return NAN;
  }
  return std::stod((*it)[1]);
}

TEST(TestCommand, MetricsMatchIndependentComputation) {
  TempDir dir;
  auto input = small_water_input();
  input["training"]["numb_steps"] = 10;
  write_text(dir / "input.json", input.dump());
  const Result trained = run("--threads 1 train " + (dir / "input.json") + " -o " + (dir / "out"));
  ASSERT_EQ(trained.code, 0) << trained.output;
  EXPECT_NE(trained.output.find(", 1 threads"), std::string::npos) << "the global --threads flag: " << trained.output;

  const Result r = run("test -m " + (dir / "out/model.ckpt.pt") + " -s " + bundled("water/data_3") + " -n 5 -d " +
                       (dir / "pred"));
  ASSERT_EQ(r.code, 0) << r.output;

  const auto model = model::EnergyModel::load(load_tensor_file(dir / "out/model.ckpt.pt"), "model");
  const data::System water = data::read_deepmd_system(bundled("water/data_3"));
  const auto p = model->evaluate(model->prepare(water, {0, 1, 2, 3, 4}), false);
  double se_e = 0, se_f = 0, ae_f = 0;
  for (int f = 0; f < 5; ++f) {
    se_e += std::pow(p.energy[f].item<double>() - water.energy[f], 2);
    for (int k = 0; k < 192 * 3; ++k) {
      const double d = p.force[f].view({-1})[k].item<double>() - water.force[f * 192 * 3 + k];
      se_f += d * d;
      ae_f += std::abs(d);
    }
  }
  const double rmse_e = std::sqrt(se_e / 5), rmse_f = std::sqrt(se_f / (5 * 576)), mae_f = ae_f / (5 * 576);
  EXPECT_NEAR(printed(r.output, "Energy RMSE"), rmse_e, 1e-5 * rmse_e);
  EXPECT_NEAR(printed(r.output, "Energy RMSE/Natoms"), rmse_e / 192, 1e-5 * rmse_e / 192);
  EXPECT_NEAR(printed(r.output, "Force RMSE"), rmse_f, 1e-5 * rmse_f);
  EXPECT_NEAR(printed(r.output, "Force MAE"), mae_f, 1e-5 * mae_f);
  EXPECT_NE(r.output.find(fmt::format("number of test data : 5 (the first 5 of {} frames; -n sets how many)",
                                      water.nframes)),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("Virial"), std::string::npos) << "water has no virial labels";

  // The detail files hold label then prediction, one row per frame / per atom.
  const auto rows = numeric_rows(read_text(dir / "pred.e.out"));
  ASSERT_EQ(rows.size(), 5u);
  for (int f = 0; f < 5; ++f) {
    ASSERT_EQ(rows[f].size(), 2u);
    EXPECT_NEAR(rows[f][0], water.energy[f], 1e-6);
    EXPECT_NEAR(rows[f][1], p.energy[f].item<double>(), 1e-6);
  }
  EXPECT_TRUE(fs::exists(dir / "pred.f.out"));
}

TEST(TestCommand, WeightedAverageOverSystemsWithVirials) {
  TempDir dir;
  auto input = small_water_input({bundled("metals/Cu_mishin1/train/Cu32")}, {bundled("metals/Cu_mishin1/valid/Cu32")});
  input["model"]["type_map"] = {"Cu"};
  input["model"]["descriptor"]["sel"] = {60};
  input["training"]["numb_steps"] = 5;
  ASSERT_EQ(train(dir, input, "out").code, 0);
  const Result r = run("test -m " + (dir / "out/model.ckpt.pt") + " -s " + bundled("metals/Cu_mishin1") + " -n 3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("number of systems : 2"), std::string::npos) << r.output;
  // Two systems of 3 frames: the average RMSE is the root of the mean of the squares.
  const double a = printed(r.output, "Virial RMSE", 0), b = printed(r.output, "Virial RMSE", 1);
  EXPECT_NEAR(printed(r.output, "Virial RMSE", 2), std::sqrt((a * a + b * b) / 2), 1e-5 * a);
}

}  // namespace
}  // namespace atomforge::testing
