// The C inference API and its C++ wrapper against EnergyModel::evaluate and `atomforge test -d`
// on the same frames (periodic water, an isolated CH3OH molecule), bad model files, bad
// arguments, and the example C program (examples/c/predict.c).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <regex>

#include <gtest/gtest.h>

#include "api_test_util.hpp"
#include "atomforge/atomforge.h"
#include "atomforge/atomforge.hpp"
#include "core/tensor_file.hpp"
#include "data/system.hpp"
#include "model/energy_model.hpp"

namespace atomforge::testing {
namespace {

// A value written with "{:.10e}": 11 significant digits.
void expect_printed(double printed, double exact, const std::string& what) {
  EXPECT_NEAR(printed, exact, 1e-9 * std::max(1.0, std::abs(exact))) << what;
}

// One tiny model for the whole suite: O, H and C, trained 5 steps on water and CH3OH.
class CApi : public TinyModelTest {
 protected:
  // Frames `frames` of `system` through the C API, against EnergyModel::evaluate and the
  // predictions `atomforge test -d` writes.
  void check_system(const std::string& system_path, int nframes) {
    const data::System system = data::read_deepmd_system(system_path);
    const auto model = load_model(checkpoint_);
    const std::vector<int32_t> types32 = data::map_types(system, model->type_map());
    const std::vector<int> types(types32.begin(), types32.end());
    const int natoms = static_cast<int>(system.natoms());

    const Result r = run("test -m " + checkpoint_ + " -s " + system_path + " -n " + std::to_string(nframes) + " -d " +
                         (*dir_ / "pred"));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::vector<double> cli_e = predicted_columns(*dir_ / "pred.e.out", 1);
    const std::vector<double> cli_f = predicted_columns(*dir_ / "pred.f.out", 3);
    ASSERT_EQ(cli_e.size(), static_cast<std::size_t>(nframes));
    ASSERT_EQ(cli_f.size(), static_cast<std::size_t>(nframes) * natoms * 3);

    Handle handle(af_model_load(checkpoint_.c_str(), nullptr));
    ASSERT_TRUE(af_model_ok(handle.get())) << af_model_error(handle.get());
    atomforge::Model wrapper(checkpoint_);

    for (int f = 0; f < nframes; ++f) {
      const double* coord = system.frame_coord(f);
      const double* box = system.pbc ? system.frame_box(f) : nullptr;
      double energy = NAN;
      std::vector<double> force(natoms * 3, NAN), virial(9, NAN), atom_energy(natoms, NAN);
      ASSERT_EQ(af_model_compute(handle.get(), natoms, coord, types.data(), box, &energy, force.data(), virial.data(),
                                 atom_energy.data()),
                AF_OK)
          << af_model_error(handle.get());
      EXPECT_STREQ(af_model_error(handle.get()), "");

      // EnergyModel::evaluate on the same frame.
      const auto p = model->evaluate(model->prepare(system, {f}), false);
      const std::string where = system_path + " frame " + std::to_string(f);
      expect_close(energy, p.energy.item<double>(), where + " energy");
      expect_close_each(force, values(p.force), natoms * 3, where + " force");
      expect_close_each(virial, values(p.virial), 9, where + " virial");
      expect_close_each(atom_energy, values(p.atom_energy), natoms, where + " atom energy");
      double sum = 0;
      for (double e : atom_energy) sum += e;
      expect_close(sum, energy, where + " sum of atom energies");

      // The numbers `atomforge test` printed.
      expect_printed(cli_e[f], energy, where + " energy vs atomforge test");
      for (int k = 0; k < natoms * 3; ++k)
        expect_printed(cli_f[f * natoms * 3 + k], force[k], where + " force vs atomforge test");

      // The C++ wrapper gives the same numbers.
      const std::vector<double> c(coord, coord + natoms * 3);
      const std::vector<double> b = box ? std::vector<double>(box, box + 9) : std::vector<double>{};
      const atomforge::Prediction w = wrapper.compute(c, types, b);
      expect_close(w.energy, energy, where + " C++ energy");
      ASSERT_EQ(w.force.size(), force.size());
      expect_close_each(w.force, force, force.size(), where + " C++ force");
      expect_close_each(w.virial, virial, 9, where + " C++ virial");
      expect_close_each(w.atom_energy, atom_energy, natoms, where + " C++ atom energy");
      const auto ref_av = values(p.atom_virial);
      ASSERT_EQ(w.atom_virial.size(), ref_av.size());
      expect_close_each(w.atom_virial, ref_av, ref_av.size(), where + " C++ atom virial");
    }
  }
};

TEST_F(CApi, VersionAndModelInfo) {
  EXPECT_EQ(ATOMFORGE_API_VERSION, 4);
  EXPECT_EQ(af_api_version(), ATOMFORGE_API_VERSION);
  Handle handle(af_model_load(checkpoint_.c_str(), nullptr));
  ASSERT_NE(handle.get(), nullptr);
  ASSERT_TRUE(af_model_ok(handle.get())) << af_model_error(handle.get());
  EXPECT_STREQ(af_model_error(handle.get()), "");
  ASSERT_EQ(af_model_ntypes(handle.get()), 3);
  EXPECT_STREQ(af_model_type_name(handle.get(), 0), "O");
  EXPECT_STREQ(af_model_type_name(handle.get(), 1), "H");
  EXPECT_STREQ(af_model_type_name(handle.get(), 2), "C");
  EXPECT_EQ(af_model_type_name(handle.get(), 3), nullptr);
  EXPECT_EQ(af_model_type_name(handle.get(), -1), nullptr);
  EXPECT_EQ(af_model_type_index(handle.get(), "C"), 2);
  EXPECT_EQ(af_model_type_index(handle.get(), "N"), -1);
  EXPECT_DOUBLE_EQ(af_model_cutoff(handle.get()), 4.0);
  EXPECT_DOUBLE_EQ(af_model_receptive_field(handle.get()), 4.0);  // se_e2_a: one hop
  EXPECT_STREQ(af_model_head(handle.get()), "default");

  atomforge::Model wrapper(checkpoint_, "default");
  EXPECT_EQ(wrapper.type_map(), (std::vector<std::string>{"O", "H", "C"}));
  EXPECT_EQ(wrapper.type_index("H"), 1);
  EXPECT_DOUBLE_EQ(wrapper.cutoff(), 4.0);
  EXPECT_THROW(wrapper.type_index("Xe"), atomforge::ApiError);
  atomforge::Model moved = std::move(wrapper);
  EXPECT_EQ(moved.ntypes(), 3);
}

TEST_F(CApi, PeriodicWaterMatchesEvaluateAndAtomforgeTest) { check_system(bundled("water/data_3"), 3); }

TEST_F(CApi, IsolatedMoleculeMatchesEvaluateAndAtomforgeTest) {
  check_system(bundled("mf/gfn1/valid/CH3OH"), 2);
}

TEST_F(CApi, NoPbcDiffersFromPbc) {
  // Without the box, atoms near the cell faces lose their periodic neighbours: another energy.
  const data::System water = data::read_deepmd_system(bundled("water/data_3"));
  Handle handle(af_model_load(checkpoint_.c_str(), nullptr));
  const std::vector<int32_t> t32 = data::map_types(water, {"O", "H", "C"});
  const std::vector<int> types(t32.begin(), t32.end());
  double e_pbc = 0, e_free = 0;
  ASSERT_EQ(af_model_compute(handle.get(), 192, water.frame_coord(0), types.data(), water.frame_box(0), &e_pbc,
                             nullptr, nullptr, nullptr),
            AF_OK)
      << af_model_error(handle.get());
  ASSERT_EQ(af_model_compute(handle.get(), 192, water.frame_coord(0), types.data(), nullptr, &e_free, nullptr,
                             nullptr, nullptr),
            AF_OK)
      << af_model_error(handle.get());
  EXPECT_NE(e_pbc, e_free);
}

TEST_F(CApi, BadModelFilesGiveCodeAndMessageNamingTheFile) {
  TempDir dir;
  const std::string garbage = dir / "garbage.pt", truncated = dir / "truncated.pt", missing = dir / "missing.pt";
  write_text(garbage, "this is not a model file, just some bytes\n");
  const std::string good = read_text(checkpoint_);
  write_text(truncated, good.substr(0, good.size() / 2));
  for (const std::string& path : {garbage, truncated, missing}) {
    Handle handle(af_model_load(path.c_str(), nullptr));
    ASSERT_NE(handle.get(), nullptr);
    EXPECT_FALSE(af_model_ok(handle.get()));
    const std::string message = af_model_error(handle.get());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_EQ(af_model_ntypes(handle.get()), 0);
    EXPECT_EQ(af_model_cutoff(handle.get()), 0.0);
    // Computing with it fails with a code, keeping the reason.
    const double coord[3] = {0, 0, 0};
    const int type = 0;
    double energy = 0;
    EXPECT_EQ(af_model_compute(handle.get(), 1, coord, &type, nullptr, &energy, nullptr, nullptr, nullptr),
              AF_ERR_NOT_LOADED);
    EXPECT_NE(std::string(af_model_error(handle.get())).find(path), std::string::npos);

    try {
      atomforge::Model model(path);
      ADD_FAILURE() << "no exception for " << path;
    } catch (const atomforge::ApiError& e) {
      EXPECT_NE(e.code(), AF_OK);
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  // An unknown head.
  Handle handle(af_model_load(checkpoint_.c_str(), "nope"));
  EXPECT_FALSE(af_model_ok(handle.get()));
  EXPECT_NE(std::string(af_model_error(handle.get())).find("nope"), std::string::npos) << af_model_error(handle.get());
  EXPECT_THROW(atomforge::Model(checkpoint_, "nope"), atomforge::ApiError);
  // NULL everywhere.
  EXPECT_FALSE(af_model_ok(nullptr));
  EXPECT_STRNE(af_model_error(nullptr), "");
  EXPECT_EQ(af_model_compute(nullptr, 0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
            AF_ERR_NULL_HANDLE);
  af_model_free(nullptr);
  Handle null_path(af_model_load(nullptr, nullptr));
  EXPECT_FALSE(af_model_ok(null_path.get()));
}

TEST_F(CApi, BadArgumentsGiveErrorsAndLeaveOutputsAlone) {
  Handle handle(af_model_load(checkpoint_.c_str(), nullptr));
  ASSERT_TRUE(af_model_ok(handle.get()));
  const double coord[9] = {0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0};
  double energy = 12345.0;
  std::vector<double> force(9, 7.0);
  for (const std::array<int, 3>& types : {std::array<int, 3>{0, 1, 3}, std::array<int, 3>{0, -1, 1}}) {
    EXPECT_EQ(af_model_compute(handle.get(), 3, coord, types.data(), nullptr, &energy, force.data(), nullptr, nullptr),
              AF_ERR_ARGUMENT);
    EXPECT_NE(std::string(af_model_error(handle.get())).find("type"), std::string::npos) << af_model_error(handle.get());
    EXPECT_EQ(energy, 12345.0);
    EXPECT_EQ(force, std::vector<double>(9, 7.0));
  }
  const int good_types[3] = {0, 1, 1};
  EXPECT_EQ(af_model_compute(handle.get(), 0, coord, good_types, nullptr, &energy, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  EXPECT_EQ(af_model_compute(handle.get(), 3, nullptr, good_types, nullptr, &energy, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  const double nan_coord[9] = {0, 0, 0, NAN, 0, 0, 1, 0, 0};
  EXPECT_EQ(af_model_compute(handle.get(), 3, nan_coord, good_types, nullptr, &energy, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  const double flat_box[9] = {5, 0, 0, 0, 5, 0, 0, 0, 0};
  EXPECT_EQ(af_model_compute(handle.get(), 3, coord, good_types, flat_box, &energy, nullptr, nullptr, nullptr),
            AF_ERR_ARGUMENT);
  // Two atoms at one place: the model's own error, as a code.
  const double same[9] = {0, 0, 0, 0, 0, 0, 1, 0, 0};
  EXPECT_NE(af_model_compute(handle.get(), 3, same, good_types, nullptr, &energy, nullptr, nullptr, nullptr), AF_OK);
  EXPECT_STRNE(af_model_error(handle.get()), "");
  EXPECT_EQ(energy, 12345.0);
  // The handle still works, and a success clears the message.
  EXPECT_EQ(af_model_compute(handle.get(), 3, coord, good_types, nullptr, &energy, nullptr, nullptr, nullptr), AF_OK);
  EXPECT_STREQ(af_model_error(handle.get()), "");
  EXPECT_NE(energy, 12345.0);

  atomforge::Model wrapper(checkpoint_);
  EXPECT_THROW(wrapper.compute({0, 0, 0, 1, 0, 0}, {0, 5}), atomforge::ApiError);
  EXPECT_THROW(wrapper.compute({0, 0, 0, 1, 0}, {0, 1}), atomforge::ApiError);
  EXPECT_THROW(wrapper.compute({0, 0, 0, 1, 0, 0}, {0, 1}, {1, 2, 3}), atomforge::ApiError);
  try {
    wrapper.compute({0, 0, 0, 1, 0, 0}, {0, 5});
  } catch (const atomforge::ApiError& e) {
    EXPECT_EQ(e.code(), AF_ERR_ARGUMENT);
  }
}

// A device this library or machine lacks is an argument error that leaves the model where it was;
// on the device ATOMFORGE_TEST_DEVICE names (the CPU by default) the results equal the CPU's.
TEST_F(CApi, DeviceIsCheckedAndResultsReturnToTheHost) {
  Handle host(af_model_load(checkpoint_.c_str(), nullptr)), moved(af_model_load(checkpoint_.c_str(), nullptr));
  ASSERT_TRUE(af_model_ok(host.get()) && af_model_ok(moved.get()));
  EXPECT_EQ(af_model_set_device(nullptr, "cpu"), AF_ERR_NULL_HANDLE);
  EXPECT_EQ(af_model_set_device(moved.get(), nullptr), AF_ERR_ARGUMENT);
  for (const char* bad : {"tpu", "cuda:99", ""}) {
    EXPECT_EQ(af_model_set_device(moved.get(), bad), AF_ERR_ARGUMENT) << bad;
    EXPECT_NE(std::string(af_model_error(moved.get())).find(std::string("'") + bad + "'"), std::string::npos)
        << af_model_error(moved.get());
  }
  const char* device = std::getenv("ATOMFORGE_TEST_DEVICE");
  ASSERT_EQ(af_model_set_device(moved.get(), device != nullptr && *device != '\0' ? device : "cpu"), AF_OK)
      << af_model_error(moved.get());
  EXPECT_STREQ(af_model_error(moved.get()), "");

  const double coord[9] = {0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0};
  const int types[3] = {0, 1, 1};
  double e_host = 0, e_moved = 0;
  std::vector<double> f_host(9), f_moved(9);
  ASSERT_EQ(af_model_compute(host.get(), 3, coord, types, nullptr, &e_host, f_host.data(), nullptr, nullptr), AF_OK);
  ASSERT_EQ(af_model_compute(moved.get(), 3, coord, types, nullptr, &e_moved, f_moved.data(), nullptr, nullptr), AF_OK)
      << af_model_error(moved.get());
  expect_close(e_moved, e_host, "energy");
  expect_close_each(f_moved, f_host, 9, "force");

  atomforge::Model wrapper(checkpoint_);
  EXPECT_THROW(wrapper.set_device("gpu"), atomforge::ApiError);
  wrapper.set_device("cpu");
  EXPECT_EQ(wrapper.compute({coord, coord + 9}, {0, 1, 1}).energy, e_host);
}

TEST_F(CApi, ExampleCProgramPrintsTheApiEnergy) {
  const Result r = run_shell(std::string(ATOMFORGE_PREDICT_C) + " " + checkpoint_);
  ASSERT_EQ(r.code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(energy: ([-+0-9.eE]+) eV)"))) << r.output;
  const double printed = std::stod(m[1]);

  // The molecule predict.c hard-codes.
  atomforge::Model model(checkpoint_);
  const auto result = model.compute({0.0, 0.0, 0.0, 0.7569503, 0.5858823, 0.0, -0.7569503, 0.5858823, 0.0},
                                    {model.type_index("O"), model.type_index("H"), model.type_index("H")});
  EXPECT_EQ(printed, result.energy) << r.output;
  EXPECT_NE(r.output.find("force O:"), std::string::npos) << r.output;

  // A bad model: exit code 1 and the message naming the file.
  TempDir dir;
  write_text(dir / "bad.pt", "garbage");
  const Result bad = run_shell(std::string(ATOMFORGE_PREDICT_C) + " " + (dir / "bad.pt"));
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find(dir / "bad.pt"), std::string::npos) << bad.output;
}

// A multi-head model: no head is an error naming the heads; a named head computes that head.
TEST(CApiMultiHead, HeadIsChosenByName) {
  TempDir dir;
  auto input = multitask_example_input();
  input["training"]["numb_steps"] = 2;
  const std::string checkpoint = trained_checkpoint(dir, input, "out");
  ASSERT_FALSE(checkpoint.empty());

  Handle none(af_model_load(checkpoint.c_str(), nullptr));
  EXPECT_FALSE(af_model_ok(none.get()));
  const std::string message = af_model_error(none.get());
  EXPECT_NE(message.find("gfn1"), std::string::npos) << message;
  EXPECT_NE(message.find("gfnff"), std::string::npos) << message;
  EXPECT_THROW(atomforge::Model{checkpoint}, atomforge::ApiError);

  const data::System system = data::read_deepmd_system(bundled("mf/gfn1/valid/CH3OH"));
  const auto model = load_model(checkpoint);
  const std::vector<int32_t> t32 = data::map_types(system, model->type_map());
  const std::vector<int> types(t32.begin(), t32.end());
  std::vector<double> energies;
  for (const std::string head : {"gfn1", "gfnff"}) {
    atomforge::Model wrapper(checkpoint, head);
    EXPECT_EQ(wrapper.head(), head);
    const std::vector<double> coord(system.frame_coord(0), system.frame_coord(0) + system.natoms() * 3);
    const atomforge::Prediction p = wrapper.compute(coord, types);
    const auto ref = model->evaluate(model->prepare(system, {0}), head, false);
    expect_close(p.energy, ref.energy.item<double>(), head + " energy");
    const auto ref_f = values(ref.force);
    expect_close_each(p.force, ref_f, ref_f.size(), head + " force");
    energies.push_back(p.energy);
  }
  EXPECT_NE(energies[0], energies[1]);
}

}  // namespace
}  // namespace atomforge::testing
