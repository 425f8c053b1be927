// pair_style atomforge in LAMMPS (plugins/lammps, run through lmp_atomforge + `plugin load`): a
// periodic water box gives the C API's energy, forces, virial, per-atom energies and per-atom
// virials with 1 MPI rank (the whole periodic box) and 2 (domains with ghosts), for a one-hop model
// (se_e2_a) and message-passing ones (painn, dimenet), orthogonal and triclinic; short NVE runs
// conserve energy.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "../frame_test_util.hpp"
#include "atomforge/atomforge.h"

namespace atomforge::testing {
namespace {

// LAMMPS' metal units: pressure (bar) = nktv2p * energy / volume (its update.cpp).
constexpr double kNktv2p = 1.6021765e6;
// LAMMPS' virial order xx yy zz xy xz yz in our row-major 3x3 (xy = sum r_x F_y = W[1][0]).
constexpr int kLammpsOrder[6] = {0, 4, 8, 3, 6, 7};

// Frame 0 of the bundled water, its atoms wrapped into the box; model types O 0, H 1. Boxes here
// are LAMMPS' restricted triclinic: a = (xprd,0,0), b = (xy,yprd,0), c = (xz,yz,zprd).
Frame load_water() {
  Frame w = load_frame(bundled("water/data_0"), 0, {"O", "H"});
  wrap_into_box(w);
  return w;
}

// `w` (orthorhombic) sheared into a triclinic box with tilts xy, xz, yz: the same fractional
// coordinates in the new cell.
Frame tilted(Frame w, double xy, double xz, double yz) {
  w.box[3] = xy;
  w.box[6] = xz;
  w.box[7] = yz;
  for (int i = 0; i < w.natoms; ++i) {
    double frac[3];
    for (int c = 0; c < 3; ++c) frac[c] = w.coord[3 * i + c] / w.box[4 * c];
    for (int d = 0; d < 3; ++d)
      w.coord[3 * i + d] = frac[0] * w.box[d] + frac[1] * w.box[3 + d] + frac[2] * w.box[6 + d];
  }
  return w;
}

// A LAMMPS data file; `lammps_type[t]` is the LAMMPS type of model type t.
void write_data_file(const std::string& path, const Frame& w, const std::vector<int>& lammps_type) {
  std::string text = fmt::format("water, frame 0 of examples/data/water/data_0\n\n{} atoms\n2 atom types\n\n",
                                 w.natoms);
  const char* axes[3] = {"x", "y", "z"};
  for (int c = 0; c < 3; ++c) text += fmt::format("0 {:.17g} {}lo {}hi\n", w.box[4 * c], axes[c], axes[c]);
  if (w.box[3] != 0 || w.box[6] != 0 || w.box[7] != 0)
    text += fmt::format("{:.17g} {:.17g} {:.17g} xy xz yz\n", w.box[3], w.box[6], w.box[7]);
  const double mass[2] = {15.999, 1.008};
  text += fmt::format("\nMasses\n\n{} {}\n{} {}\n\nAtoms # atomic\n\n", lammps_type[0], mass[0], lammps_type[1], mass[1]);
  for (int i = 0; i < w.natoms; ++i)
    text += fmt::format("{} {} {:.17g} {:.17g} {:.17g}\n", i + 1, lammps_type[w.types[i]], w.coord[3 * i],
                        w.coord[3 * i + 1], w.coord[3 * i + 2]);
  write_text(path, text);
}

// The lines of `output` that start with `tag`, as numbers.
std::vector<double> tagged(const std::string& output, const std::string& tag) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(tag + " ", 0) != 0) continue;
    std::istringstream fields(line.substr(tag.size()));
    std::vector<double> v;
    double x;
    while (fields >> x) v.push_back(x);
    return v;
  }
  return {};
}

// Rows of a `dump custom` file after its ITEM: ATOMS line.
std::vector<std::vector<double>> dump_rows(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::vector<std::vector<double>> rows;
  bool atoms = false;
  while (std::getline(in, line)) {
    if (line.rfind("ITEM:", 0) == 0) {
      atoms = line.rfind("ITEM: ATOMS", 0) == 0;
      continue;
    }
    if (!atoms) continue;
    std::istringstream fields(line);
    std::vector<double> row;
    double x;
    while (fields >> x) row.push_back(x);
    rows.push_back(row);
  }
  return rows;
}

void expect_relative(double value, double reference, double scale, const std::string& what) {
  EXPECT_NEAR(value, reference, 1e-8 * scale) << what;
}

// The descriptor of each test model: small, so that training takes seconds.
nlohmann::ordered_json descriptor(const std::string& kind) {
  nlohmann::ordered_json d = kind == "painn" ? small_painn(3.5) : kind == "dimenet" ? small_dimenet(3.0) : nullptr;
  if (!d.is_null()) d["seed"] = 1;
  return d;  // null: small_water_input's se_e2_a
}

class Lammps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::string(ATOMFORGE_LMP).empty()) return;
    dir_ = new TempDir;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (std::string(ATOMFORGE_LMP).empty())
      GTEST_SKIP() << "the LAMMPS plugin is not built (needs LAMMPS' development files: liblammps-dev)";
  }

  // A `kind` model trained on the bundled water and frozen (see cached_model). The graph trunks
  // get 60 steps: after 20, painn still pulls atoms together in NVE.
  static std::string trained(const std::string& kind) {
    auto input = small_water_input();
    if (const auto d = descriptor(kind); !d.is_null()) input["model"]["descriptor"] = d;
    input["training"]["numb_steps"] = kind == "se_e2_a" ? 20 : 60;
    return cached_model(input, true);
  }

  // Runs `script` (after the common set-up lines; `setup` replaces the periodic boundary line)
  // with `ranks` MPI ranks in a fresh folder.
  static Result run_lammps(const std::string& name, const std::string& model, const std::string& data_file,
                           const std::string& coeff, const std::string& script, int ranks,
                           const std::string& setup = "boundary p p p\n") {
    const std::string folder = *dir_ / name;
    fs::create_directories(folder);
    write_text(folder + "/in.lmp", fmt::format("units metal\natom_style atomic\n{}read_data {}\n"
                                               "plugin load {}\npair_style atomforge {}\npair_coeff * * {}\n{}",
                                               setup, data_file, ATOMFORGE_LAMMPS_PLUGIN, model, coeff, script));
    // One thread per rank (the machine may have few cores); mpirun as root needs consent, and
    // containers often forbid the shared-memory single copy.
    std::string command = "cd " + folder + " && OMP_NUM_THREADS=1 ";
    if (ranks > 1)
      command += fmt::format(
          "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
          "mpirun --oversubscribe -np {} ",
          ranks);
    return run_shell(command + ATOMFORGE_LMP + " -in in.lmp -log log.lammps");
  }

  // `run 0` of `kind` on `w` with each of `ranks` MPI ranks gives the C API's energy, forces,
  // virial, per-atom energies and per-atom virials on the frame, to 1e-8 relative. One rank
  // computes the whole periodic box; several (or one without periodic boundaries) compute their
  // domains, painn with ghosts one cut-off deep and their features exchanged between layers, the
  // others with ghosts as deep as the receptive field. `processors`: LAMMPS' processors command.
  static void expect_run0_matches_c_api(const std::string& kind, const Frame& w, const std::string& name,
                                        bool periodic = true, const std::vector<int>& rank_counts = {1, 2},
                                        const std::string& processors = "") {
    const std::string model_path = trained(kind);
    ASSERT_FALSE(model_path.empty());
    af_model* model = af_model_load(model_path.c_str(), nullptr);
    ASSERT_TRUE(af_model_ok(model)) << af_model_error(model);
    const double cutoff = af_model_cutoff(model), receptive_field = af_model_receptive_field(model);
    double energy = 0;
    std::vector<double> force(3 * w.natoms), virial(9), atom_energy(w.natoms), atom_virial(9 * w.natoms);
    ASSERT_EQ(af_model_compute_atomic(model, w.natoms, w.coord.data(), w.types.data(),
                                      periodic ? w.box.data() : nullptr, &energy,
                                      force.data(), virial.data(), atom_energy.data(), atom_virial.data()),
              AF_OK)
        << af_model_error(model);
    af_model_free(model);
    const double volume = w.box[0] * w.box[4] * w.box[8];

    const std::string script =
        "compute pea all pe/atom\ncompute sa all stress/atom NULL virial\ncompute pv all pressure NULL virial\n"
        "thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6]\n"
        "dump d all custom 1 atoms.dump id fx fy fz c_pea c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]\n"
        "dump_modify d format float %.17g sort id\nrun 0\n"
        "print \"AF_PE $(pe:%.17g)\"\n"
        "print \"AF_P $(c_pv[1]:%.17g) $(c_pv[2]:%.17g) $(c_pv[3]:%.17g) $(c_pv[4]:%.17g) $(c_pv[5]:%.17g) "
        "$(c_pv[6]:%.17g)\"\n";
    // Odd rank counts with LAMMPS types O=1 H=2; even ones with them swapped (pair_coeff maps by name).
    write_data_file(*dir_ / (name + "_oh.data"), w, {1, 2});
    write_data_file(*dir_ / (name + "_ho.data"), w, {2, 1});
    const std::string setup = std::string(periodic ? "boundary p p p\n" : "boundary f f f\n") + processors;
    for (const int ranks : rank_counts) {
      const std::string run_name = fmt::format("{}_np{}", name, ranks);
      const Result r =
          ranks % 2 == 1
              ? run_lammps(run_name, model_path, *dir_ / (name + "_oh.data"), "O H", script, ranks, setup)
              : run_lammps(run_name, model_path, *dir_ / (name + "_ho.data"), "H O", script, ranks, setup);
      ASSERT_EQ(r.code, 0) << r.output;
      std::smatch match;  // LAMMPS really split the box
      ASSERT_TRUE(std::regex_search(r.output, match, std::regex(R"((\d+) by (\d+) by (\d+) MPI processor grid)")));
      EXPECT_EQ(std::stoi(match[1]) * std::stoi(match[2]) * std::stoi(match[3]), ranks) << r.output;
      // The path, and the ghost depth it asked LAMMPS for (plus the default metal skin, 2 A).
      const bool whole_box = ranks == 1 && periodic, exchange = !whole_box && kind == "painn";
      EXPECT_NE(r.output.find(whole_box  ? "atomforge: whole periodic box"
                              : exchange ? "ghost features exchanged between layers"
                                         : "ghost cut-off = receptive field"),
                std::string::npos)
          << r.output;
      ASSERT_TRUE(std::regex_search(r.output, match, std::regex(R"(ghost atom cutoff = ([0-9.]+))"))) << r.output;
      EXPECT_DOUBLE_EQ(std::stod(match[1]), (whole_box || exchange ? cutoff : receptive_field) + 2.0) << r.output;
      const std::string where = fmt::format("{}, {} rank(s): ", kind, ranks);

      const std::vector<double> pe = tagged(r.output, "AF_PE"), p = tagged(r.output, "AF_P");
      ASSERT_EQ(pe.size(), 1u) << r.output;
      ASSERT_EQ(p.size(), 6u) << r.output;
      expect_relative(pe[0], energy, std::abs(energy), where + "energy");
      for (int c = 0; c < 6; ++c)
        expect_relative(p[c] * volume / kNktv2p, virial[kLammpsOrder[c]], max_abs(virial),
                        where + "virial " + std::to_string(c));

      const auto rows = dump_rows(*dir_ / (run_name + "/atoms.dump"));
      ASSERT_EQ(rows.size(), static_cast<std::size_t>(w.natoms));
      const double f_scale = max_abs(force), ae_scale = max_abs(atom_energy), av_scale = max_abs(atom_virial);
      for (int i = 0; i < w.natoms; ++i) {
        const auto& row = rows[i];
        ASSERT_EQ(row.size(), 11u);
        ASSERT_EQ(row[0], i + 1);
        const std::string atom = where + "atom " + std::to_string(i + 1);
        for (int c = 0; c < 3; ++c) expect_relative(row[1 + c], force[3 * i + c], f_scale, atom + " force");
        expect_relative(row[4], atom_energy[i], ae_scale, atom + " energy");
        // stress/atom is minus the per-atom virial, in bar * A^3.
        for (int c = 0; c < 6; ++c)
          expect_relative(-row[5 + c] / kNktv2p, atom_virial[9 * i + kLammpsOrder[c]], av_scale, atom + " virial");
      }
    }
  }

  // A 200-step NVE run of `kind` on `ranks` ranks keeps the total energy.
  static void expect_nve_conserves_energy(const std::string& kind, int ranks) {
    const std::string model_path = trained(kind);
    ASSERT_FALSE(model_path.empty());
    const std::string name = fmt::format("nve_{}_np{}", kind, ranks);
    write_data_file(*dir_ / (name + ".data"), load_water(), {1, 2});
    const Result r = run_lammps(name, model_path, *dir_ / (name + ".data"), "O H",
                                "velocity all create 300 4928459 mom yes rot yes dist gaussian\n"
                                "timestep 0.0005\nfix nve all nve\n"
                                "thermo 5\nthermo_style custom step pe ke etotal\nthermo_modify format float %.17g\n"
                                "run 200\n",
                                ranks);
    ASSERT_EQ(r.code, 0) << r.output;
    // The thermo table: "Step PotEng KinEng TotEng", then one row every 5 steps.
    std::istringstream in(r.output);
    std::string line;
    std::vector<double> ke, etotal;
    bool table = false;
    while (std::getline(in, line)) {
      if (line.find("Step PotEng KinEng TotEng") != std::string::npos) {
        table = true;
        continue;
      }
      if (!table) continue;
      std::istringstream fields(line);
      double step, pe, k, e;
      if (!(fields >> step >> pe >> k >> e)) break;  // "Loop time ..."
      ke.push_back(k);
      etotal.push_back(e);
    }
    ASSERT_EQ(ke.size(), 41u) << r.output;
    const auto [ke_min, ke_max] = std::minmax_element(ke.begin(), ke.end());
    double drift = 0;
    for (double e : etotal) drift = std::max(drift, std::abs(e - etotal.front()));
    const double exchange = *ke_max - *ke_min;
    // The system moves: kinetic and potential energy exchange much more than rounding.
    EXPECT_GT(exchange, 0.05) << r.output;
    // Velocity Verlet at 0.5 fs keeps the total energy to a few per cent of that exchange (its
    // error is O(dt^2)); forces inconsistent with the energy (a missing ghost term, a sign)
    // would show up at the size of the exchange itself.
    EXPECT_LT(drift, 0.02 * exchange) << kind << ": total energy varies by " << drift
                                      << " eV while the kinetic energy varies by " << exchange << " eV\n"
                                      << r.output;
  }

  static TempDir* dir_;
};

TempDir* Lammps::dir_ = nullptr;

TEST_F(Lammps, RunZeroMatchesTheCApiWithOneAndTwoRanks) {
  expect_run0_matches_c_api("se_e2_a", load_water(), "se_e2_a");
}

// Message passing: on one rank the model builds the periodic images of the owned atoms itself
// (whole box); on two and three, ghosts one cut-off deep have their features exchanged (the
// three domains are thinner than the ghost cut-off: ghosts of ghosts).
TEST_F(Lammps, PainnMatchesTheCApiOnTheWholeBoxAndOnDomains) {
  expect_run0_matches_c_api("painn", load_water(), "painn", true, {1, 2, 3});
}

// Four ranks along x of a box twice the water's width, without periodic boundaries: the third
// domain owns no atom but has ghosts, the fourth has neither; both still take part in every ghost
// feature exchange.
TEST_F(Lammps, PainnMatchesTheCApiWithEmptyDomains) {
  Frame w = load_water();
  w.box[0] *= 2;
  expect_run0_matches_c_api("painn", w, "painn_empty", false, {4}, "processors 4 1 1\n");
}

TEST_F(Lammps, PainnMatchesTheCApiInATriclinicBox) {
  expect_run0_matches_c_api("painn", tilted(load_water(), 1.5, -1.0, 0.8), "painn_tri");
}

TEST_F(Lammps, PainnMatchesTheCApiWithoutPeriodicBoundaries) {
  expect_run0_matches_c_api("painn", load_water(), "painn_free", false);
}

// dimenet has no ghost feature exchange: on two ranks, ghosts as deep as its receptive field.
TEST_F(Lammps, DimenetMatchesTheCApiOnTheWholeBoxAndOnDomains) {
  expect_run0_matches_c_api("dimenet", load_water(), "dimenet");
}

TEST_F(Lammps, NveRunConservesEnergy) { expect_nve_conserves_energy("se_e2_a", 2); }

// Atoms leave the box between re-neighbouring steps: the model wraps them itself.
TEST_F(Lammps, PainnNveRunOnTheWholeBoxConservesEnergy) { expect_nve_conserves_energy("painn", 1); }

// Atoms change domains and ghosts come and go; features and their gradients follow.
TEST_F(Lammps, PainnNveRunWithGhostFeatureExchangeConservesEnergy) { expect_nve_conserves_energy("painn", 2); }

TEST_F(Lammps, UnknownElementIsAnError) {
  write_data_file(*dir_ / "water_err.data", load_water(), {1, 2});
  const std::string model_path = trained("se_e2_a");
  ASSERT_FALSE(model_path.empty());
  const Result r = run_lammps("unknown", model_path, *dir_ / "water_err.data", "O Xe", "run 0\n", 1);
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no element 'Xe'"), std::string::npos) << r.output;
}

// pair_style's keywords in any order; a device this build or machine lacks is an error naming it.
TEST_F(Lammps, PairStyleKeywordsAndDevice) {
  write_data_file(*dir_ / "water_kw.data", load_water(), {1, 2});
  const std::string model_path = trained("se_e2_a");
  ASSERT_FALSE(model_path.empty());
  const std::string data = *dir_ / "water_kw.data";
  const Result ok = run_lammps("keywords", model_path + " device cpu head default", data, "O H", "run 0\n", 1);
  EXPECT_EQ(ok.code, 0) << ok.output;
  const Result device = run_lammps("bad_device", model_path + " device tpu", data, "O H", "run 0\n", 1);
  EXPECT_NE(device.code, 0) << device.output;
  EXPECT_NE(device.output.find("'tpu' is not a device"), std::string::npos) << device.output;
  const Result dangling = run_lammps("dangling", model_path + " head", data, "O H", "run 0\n", 1);
  EXPECT_NE(dangling.code, 0) << dangling.output;
  EXPECT_NE(dangling.output.find("expected MODEL [head NAME] [device DEVICE]"), std::string::npos) << dangling.output;
}

}  // namespace
}  // namespace atomforge::testing
