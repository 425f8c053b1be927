// atomforge distill end to end on the bundled water: a small teacher trained by the CLI is
// distilled into a smaller se_e2_a student. The labelled frames must be the teacher's own
// predictions, the student must explain most of the teacher's force variance on held-out frames,
// and the report's numbers must agree with an independent evaluation. Selection and the split
// are checked on synthetic frames; bad input names the key.
#include <cmath>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../model/model_test_util.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "data/load_systems.hpp"
#include "distill/select.hpp"
#include "model/energy_model.hpp"

namespace atomforge::testing {
namespace {

using json = nlohmann::ordered_json;

json distill_input(const std::string& teacher) {
  return json::parse(R"({
    "teacher": "",
    "start": {"systems": [], "frames": [0, 40]},
    "explore": {"temperatures": [300, 500], "steps": 24, "timestep_fs": 0.5, "every": 4, "seed": 5},
    "select": {"max_force": 50, "validation_fraction": 0.25, "seed": 2},
    "student": {
      "model": {
        "descriptor": {"type": "se_e2_a", "sel": [24, 48], "rcut": 4.0, "rcut_smth": 0.5,
                       "neuron": [4, 8, 16], "axis_neuron": 4, "seed": 1},
        "fitting_net": {"neuron": [16, 16], "seed": 2}
      },
      "learning_rate": {"start_lr": 0.005, "stop_lr": 0.0002, "decay_steps": 30},
      "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
      "training": {"training_data": {"batch_size": 1}, "numb_steps": 300, "seed": 3, "disp_freq": 50,
                   "save_freq": 300, "disp_training": false}
    },
    "original_data": [],
    "timing_repeats": 3
  })")
      .patch(json::array({{{"op", "replace"}, {"path", "/teacher"}, {"value", teacher}},
                          {{"op", "replace"}, {"path", "/start/systems"}, {"value", {bundled("water/data_0")}}},
                          {{"op", "replace"}, {"path", "/original_data"}, {"value", {bundled("water/data_3")}}}}));
}

// Energy, forces and virial of every frame, one frame per evaluation.
std::vector<std::vector<double>> per_frame_predictions(const model::EnergyModel& m, const data::System& s) {
  std::vector<std::vector<double>> out;
  for (int64_t f = 0; f < s.nframes; ++f) {
    const auto p = m.evaluate(m.prepare(s, {f}), false);
    std::vector<double> row{p.energy.item<double>()};
    for (const at::Tensor& t : {p.force, p.virial}) {
      const std::vector<double> v = values(t);
      row.insert(row.end(), v.begin(), v.end());
    }
    out.push_back(std::move(row));
  }
  return out;
}

TEST(Distill, StudentLearnsTheTeacherOnItsOwnLabels) {
  TempDir dir;
  // The teacher: wider and with a longer cut-off than the student, trained briefly on DFT water.
  auto teacher_input = small_water_input();
  teacher_input["model"]["descriptor"]["sel"] = {30, 60};
  teacher_input["model"]["descriptor"]["rcut"] = 4.5;
  teacher_input["model"]["descriptor"]["neuron"] = {8, 16, 32};
  teacher_input["model"]["fitting_net"]["neuron"] = {32, 32};
  teacher_input["learning_rate"]["decay_steps"] = 30;
  teacher_input["training"]["numb_steps"] = 150;
  teacher_input["training"]["save_freq"] = 150;
  teacher_input["training"]["disp_training"] = false;
  ASSERT_FALSE(frozen_model(dir, teacher_input, "teacher").empty());

  write_text(dir / "distill.json", distill_input("teacher.pth").dump());
  Result r = run("distill " + (dir / "distill.json") + " -o " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json report = json::parse(read_text(dir / "out/report.json"));

  // 2 start frames x 2 temperatures x 24/4 samples; max_force 50 eV/A drops nothing physical.
  EXPECT_EQ(report["frames"]["explored"], 24);
  EXPECT_EQ(report["frames"]["dropped_max_force"], 0);
  const auto train = data::load_systems(dir / "out/labelled/train");
  const auto valid = data::load_systems(dir / "out/labelled/valid");
  ASSERT_EQ(train.size(), 1u);  // one composition, O64H128
  ASSERT_EQ(valid.size(), 1u);
  EXPECT_EQ(valid[0].nframes, 6);  // 0.25 x 24
  EXPECT_EQ(train[0].nframes, 18);
  EXPECT_EQ(report["frames"]["valid"], 6);
  EXPECT_EQ(report["frames"]["train"], 18);

  // The labels are the teacher's predictions, here evaluated one frame at a time.
  const auto teacher = load_model(dir / "teacher.pth");
  for (const auto* systems : {&train, &valid}) {
    const data::System& s = (*systems)[0];
    ASSERT_TRUE(s.has_energy() && s.has_force() && s.has_virial());
    const auto expected = per_frame_predictions(*teacher, s);
    const int64_t n3 = 3 * s.natoms();
    for (int64_t f = 0; f < s.nframes; ++f) {
      EXPECT_NEAR(s.energy[f], expected[f][0], 1e-10) << s.path << " frame " << f;
      for (int64_t k = 0; k < n3; ++k) ASSERT_NEAR(s.force[f * n3 + k], expected[f][1 + k], 1e-10) << s.path;
      for (int64_t k = 0; k < 9; ++k) ASSERT_NEAR(s.virial[f * 9 + k], expected[f][1 + n3 + k], 1e-10) << s.path;
    }
  }

  // Student against the held-out teacher labels, computed here independently of the report.
  const auto student = load_model(dir / "out/student.pth");
  const auto predicted = per_frame_predictions(*student, valid[0]);
  const int64_t n3 = 3 * valid[0].natoms();
  double se = 0, ss = 0;
  for (int64_t f = 0; f < valid[0].nframes; ++f) {
    for (int64_t k = 0; k < n3; ++k) {
      const double label = valid[0].force[f * n3 + k];
      se += std::pow(predicted[f][1 + k] - label, 2);
      ss += label * label;
    }
  }
  const double count = static_cast<double>(valid[0].nframes * n3);
  const double rmse = std::sqrt(se / count), rms = std::sqrt(ss / count);
  const json& held_out = report["held_out"];
  EXPECT_NEAR(held_out["student_vs_teacher"]["force_rmse"].get<double>(), rmse, 1e-9 * rms);
  EXPECT_NEAR(held_out["teacher_force_rms"].get<double>(), rms, 1e-9 * rms);
  EXPECT_EQ(held_out["student_vs_teacher"]["frames"], 6);
  // The student explains at least 3/4 of the teacher's force variance on frames it never saw
  // (a constant zero prediction scores rmse == rms).
  EXPECT_LT(rmse, 0.5 * rms) << "student force RMSE " << rmse << " vs teacher force RMS " << rms;

  for (const char* who : {"teacher", "student"}) {
    const json& a = report["original_data"][who];
    EXPECT_EQ(a["frames"], 80) << who;
    EXPECT_GT(a["force_rmse"].get<double>(), 0) << who;
    EXPECT_GT(a["energy_rmse_per_atom"].get<double>(), 0) << who;
    EXPECT_TRUE(a["virial_rmse_per_atom"].is_null()) << who << ": the water data have no virials";
  }
  const json& timing = report["timing"];
  EXPECT_EQ(timing["natoms"], 192);
  EXPECT_GT(timing["teacher_seconds_per_frame"].get<double>(), 0);
  EXPECT_GT(timing["student_seconds_per_frame"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(timing["speed_ratio"].get<double>(), timing["teacher_seconds_per_frame"].get<double>() /
                                                            timing["student_seconds_per_frame"].get<double>());

  // A second run into the same folder refuses before exploring.
  r = run("distill " + (dir / "distill.json") + " -o " + (dir / "out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("already holds labelled frames"), std::string::npos) << r.output;
}

// Synthetic frames whose largest atomic force is known: frame f of run r has |F| = 10 r + f on atom 1.
std::vector<data::System> synthetic_runs(int runs, int frames) {
  std::vector<data::System> out;
  for (int r = 0; r < runs; ++r) {
    data::System s;
    s.type_map = {"O", "H"};
    s.types = {0, 1, 1};
    s.pbc = false;
    s.nframes = frames;
    for (int f = 0; f < frames; ++f) {
      for (int k = 0; k < 9; ++k) s.coord.push_back(100.0 * r + f + 0.1 * k);
      s.energy.push_back(f);
      const double big = 10.0 * r + f;
      for (double v : {0.5, 0.0, 0.0, 0.0, 0.6 * big, 0.8 * big, 0.1, 0.0, 0.0}) s.force.push_back(v);
    }
    out.push_back(s);
  }
  return out;
}

TEST(DistillSelect, DropsLargeForcesSpacesAndSplitsDisjointly) {
  const auto runs = synthetic_runs(3, 10);  // largest forces 0..9, 10..19, 20..29 (at least 0.5)
  distill::SelectOptions o;
  o.max_force = 14.5;  // keeps run 0 and frames 0-4 of run 1
  o.validation_fraction = 0.2;
  o.seed = 4;
  const auto sel = distill::select_frames(runs, o);
  EXPECT_EQ(sel.explored, 30);
  EXPECT_EQ(sel.dropped_max_force, 15);
  ASSERT_EQ(sel.names, std::vector<std::string>{"O1H2_nopbc"});  // both runs: one composition
  EXPECT_EQ(sel.valid[0].nframes, 3);                           // round(0.2 x 15)
  EXPECT_EQ(sel.train[0].nframes, 12);
  std::set<double> seen;  // first x coordinate identifies the frame
  for (const auto* s : {&sel.train[0], &sel.valid[0]}) {
    for (int64_t f = 0; f < s->nframes; ++f) {
      EXPECT_LE(distill::max_atomic_force(*s, f), 14.5);
      EXPECT_TRUE(seen.insert(s->coord[9 * f]).second) << "frame in both train and valid";
    }
  }
  EXPECT_EQ(seen.size(), 15u);

  o.max_force.reset();
  o.max_frames = 6;  // evenly spaced over 30: every 5th
  const auto spaced = distill::select_frames(runs, o);
  EXPECT_EQ(spaced.dropped_max_frames, 24);
  std::set<double> firsts;
  for (const auto* s : {&spaced.train[0], &spaced.valid[0]})
    for (int64_t f = 0; f < s->nframes; ++f) firsts.insert(s->coord[9 * f]);
  EXPECT_EQ(firsts, (std::set<double>{0, 5, 100, 105, 200, 205}));

  o.validation_fraction = 0.01;  // rounds to no held-out frame
  try {
    distill::select_frames(runs, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("validation_fraction"), std::string::npos) << e.what();
  }
}

TEST(Distill, BadInputNamesTheKey) {
  TempDir dir;
  auto m = small_model({"O", "H"}, {24, 48}, 4.0);
  save_model(*m, dir / "teacher.pth");
  const auto expect_error = [&](json input, const std::string& needle) {
    write_text(dir / "bad.json", input.dump());
    const Result r = run("distill " + (dir / "bad.json") + " -o " + (dir / "out"));
    EXPECT_NE(r.code, 0) << needle;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.output;
  };
  auto typo = distill_input("teacher.pth");
  typo["explore"]["temperature"] = typo["explore"]["temperatures"];
  typo["explore"].erase("temperatures");
  expect_error(typo, "explore.temperature");
  auto fraction = distill_input("teacher.pth");
  fraction["select"]["validation_fraction"] = 1.5;
  expect_error(fraction, "select.validation_fraction");
  auto systems = distill_input("teacher.pth");
  systems["student"]["training"]["validation_data"] = {{"systems", "elsewhere"}};
  expect_error(systems, "student: training.validation_data.systems");
  auto student_key = distill_input("teacher.pth");
  student_key["student"]["loss"]["start_pref_q"] = 1;
  expect_error(student_key, "start_pref_q");
  auto frame = distill_input("teacher.pth");
  frame["start"]["frames"] = {100};
  expect_error(frame, "start.frames: frame 100 out of range");
  expect_error(distill_input("missing.pth"), "missing.pth");
}

}  // namespace
}  // namespace atomforge::testing
