// ase_frames.xyz was written by ASE 3.22 (tests/data/fixtures/make_extxyz_fixtures.py); the
// expected values are that script's formulas, recomputed here.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.hpp"
#include "data/extxyz.hpp"
#include "test_util.hpp"

namespace atomforge::data {
namespace {

using test::expect_error;

std::string fixture(const std::string& name) { return std::string(ATOMFORGE_SOURCE_DIR) + "/tests/data/fixtures/" + name; }

// Stress in ASE's Voigt order (xx yy zz yz xz xy) as a row-major 3 x 3 matrix.
std::vector<double> voigt_to_full(const double v[6]) { return {v[0], v[5], v[4], v[5], v[1], v[3], v[4], v[3], v[2]}; }

TEST(ExtxyzAse, ReadsAseWrittenFramesAndGroupsThem) {
  const std::vector<System> systems = read_extxyz(fixture("ase_frames.xyz"));
  ASSERT_EQ(systems.size(), 2u);  // Cu2 x 2 frames, then H2O

  const System& cu = systems[0];
  EXPECT_EQ(cu.nframes, 2);
  EXPECT_TRUE(cu.pbc);
  EXPECT_EQ(cu.type_map, (std::vector<std::string>{"Cu", "O", "H"}));  // order of appearance in the file
  EXPECT_EQ(cu.types, (std::vector<int32_t>{0, 0}));
  for (int f = 0; f < 2; ++f) {
    SCOPED_TRACE(f);
    const double scale = 1.0 + 0.01 * f;
    const double cell[9] = {3.6 * scale, 0, 0, 0.1 * scale, 3.5 * scale, 0, 0.2 * scale, 0.3 * scale, 3.4 * scale};
    for (int k = 0; k < 9; ++k) EXPECT_DOUBLE_EQ(cu.frame_box(f)[k], cell[k]) << k;
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(cu.frame_coord(f)[i], i * 0.25 + 0.5 * f, 1e-12) << i;
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(cu.force[f * 6 + i], (i - 2.5 - f) * 0.125, 1e-12) << i;
    EXPECT_EQ(cu.energy[f], -7.5 - f);
    // Volume of the lower-triangular cell is the product of its diagonal.
    const double volume = 3.6 * 3.5 * 3.4 * scale * scale * scale;
    double voigt[6];
    for (int k = 0; k < 6; ++k) voigt[k] = (k + 1) * 0.001 * (1 + f);
    const std::vector<double> stress = voigt_to_full(voigt);
    for (int k = 0; k < 9; ++k) EXPECT_NEAR(cu.virial[f * 9 + k], -stress[k] * volume, 1e-12) << k;
  }

  const System& water = systems[1];
  EXPECT_EQ(water.nframes, 1);
  EXPECT_FALSE(water.pbc);
  EXPECT_EQ(water.types, (std::vector<int32_t>{1, 2, 2}));
  EXPECT_EQ(water.box, std::vector<double>(9, 0.0));
  EXPECT_EQ(water.coord, (std::vector<double>{0, 0, 0.125, 0.75, 0, -0.5, -0.75, 0, -0.5}));
  for (int i = 0; i < 9; ++i) EXPECT_EQ(water.force[i], i - 4.0) << i;
  EXPECT_EQ(water.energy, std::vector<double>{-14.25});
  EXPECT_FALSE(water.has_virial());
}

System triclinic_system() {
  System s;
  s.path = "hand-made";
  s.type_map = {"Si", "O"};
  s.types = {1, 0, 1};
  s.pbc = true;
  s.nframes = 2;
  for (int i = 0; i < 18; ++i) s.coord.push_back(std::sqrt(2.0) * i - 1.0 / 3.0);
  for (int f = 0; f < 2; ++f) {
    const double b[9] = {5.1 + f / 7.0, 0, 0, 1.0 / 3.0, 4.9, 0, -0.2, 0.7 / 3.0, 6.3};
    s.box.insert(s.box.end(), b, b + 9);
  }
  s.energy = {-123.456789012345678, 1e-300};
  for (int i = 0; i < 18; ++i) s.force.push_back(std::exp(-i) - 0.5);
  for (int f = 0; f < 2; ++f) {
    // Deliberately asymmetric, so that a transposition would be caught.
    for (int k = 0; k < 9; ++k) s.virial.push_back(std::cos(k + 9 * f) * 10.0 + k * 1e-9);
  }
  return s;
}

TEST(Extxyz, RoundTripIsExactToTheLastBit) {
  test::TempDir dir;
  const System s = triclinic_system();
  write_extxyz(dir / "out.xyz", s);
  const std::vector<System> back = read_extxyz(dir / "out.xyz");
  ASSERT_EQ(back.size(), 1u);
  const System& r = back[0];
  // The reader numbers elements in order of appearance, so compare elements, not indices.
  ASSERT_EQ(r.types.size(), s.types.size());
  for (std::size_t i = 0; i < s.types.size(); ++i) EXPECT_EQ(r.type_map[r.types[i]], s.type_map[s.types[i]]) << i;
  EXPECT_TRUE(r.pbc);
  EXPECT_EQ(r.nframes, 2);
  EXPECT_EQ(r.coord, s.coord);
  EXPECT_EQ(r.box, s.box);
  EXPECT_EQ(r.energy, s.energy);
  EXPECT_EQ(r.force, s.force);
  EXPECT_EQ(r.virial, s.virial);
}

TEST(Extxyz, NonPeriodicRoundTripKeepsPbcFalse) {
  test::TempDir dir;
  System s = triclinic_system();
  s.pbc = false;
  s.box.assign(18, 0.0);
  s.virial.clear();
  write_extxyz(dir / "mol.xyz", s);
  const std::string text = read_file(dir / "mol.xyz");
  EXPECT_EQ(text.find("Lattice"), std::string::npos);
  EXPECT_NE(text.find("pbc=\"F F F\""), std::string::npos);
  const std::vector<System> back = read_extxyz(dir / "mol.xyz");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_FALSE(back[0].pbc);
  EXPECT_EQ(back[0].box, s.box);
  EXPECT_EQ(back[0].coord, s.coord);
  EXPECT_FALSE(back[0].has_virial());
}

// Velocities (atomforge md's trajectories) round-trip exactly, after the forces in any order of
// columns, and every frame of a system must have them if one has.
TEST(Extxyz, VelocitiesRoundTripAndMustBeInEveryFrame) {
  test::TempDir dir;
  System s = triclinic_system();
  for (std::size_t k = 0; k < s.coord.size(); ++k) s.velocity.push_back(0.001 * static_cast<double>(k) - 0.01);
  write_extxyz(dir / "v.xyz", s);
  const std::vector<System> back = read_extxyz(dir / "v.xyz");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].velocity, s.velocity);
  EXPECT_EQ(back[0].force, s.force);

  write_file_atomic(dir / "swapped.xyz", "1\nProperties=species:S:1:velocities:R:3:pos:R:3\nH 0.5 -1 2e-2 1 2 3\n");
  const std::vector<System> swapped = read_extxyz(dir / "swapped.xyz");
  EXPECT_EQ(swapped[0].velocity, (std::vector<double>{0.5, -1, 0.02}));
  EXPECT_EQ(swapped[0].coord, (std::vector<double>{1, 2, 3}));

  write_file_atomic(dir / "partial.xyz", "1\nProperties=species:S:1:pos:R:3:vel:R:3\nH 0 0 0 1 1 1\n"
                                         "1\nProperties=species:S:1:pos:R:3\nH 0 0 1\n");
  expect_error([&] { read_extxyz(dir / "partial.xyz"); }, {"partial.xyz", "frame 1", "lacks velocities"});
}

// Our writer's stress must be ASE's: -virial / volume, 9 values in Fortran order.
TEST(Extxyz, WrittenStressIsMinusVirialOverVolume) {
  const std::vector<std::string> type_map = {"Cu"};
  const std::vector<int32_t> types = {0};
  const double coord[3] = {0, 0, 0};
  const double box[9] = {2, 0, 0, 0, 4, 0, 0, 0, 8};  // volume 64
  const double virial[9] = {64, 128, 0, 192, 256, 320, 0, 0, 640};
  const std::string text = format_extxyz_frame(type_map, types, coord, box, true, nullptr, nullptr, virial);
  // Fortran order lists column by column: W00 W10 W20 W01 ...; stress = -W / 64.
  EXPECT_NE(text.find("stress=\"-1 -3 0 -2 -4 0 0 -5 -10\""), std::string::npos) << text;
  EXPECT_NE(text.find("virial=\"64 192 0 128 256 0 0 320 640\""), std::string::npos) << text;
  EXPECT_NE(text.find("Lattice=\"2 0 0 0 4 0 0 0 8\""), std::string::npos) << text;
}

TEST(Extxyz, FormatsAMoleculeFrameExactly) {
  const double coord[9] = {0, 0, 0.5, 0.25, -1, 0, 1e-05, 2, 3};
  const double energy = -1.5;
  const std::string text =
      format_extxyz_frame({"O", "H"}, {0, 1, 1}, coord, nullptr, false, &energy, nullptr, nullptr);
  EXPECT_EQ(text,
            "3\n"
            "Properties=species:S:1:pos:R:3 energy=-1.5 pbc=\"F F F\"\n"
            "O 0 0 0.5\n"
            "H 0.25 -1 0\n"
            "H 1e-05 2 3\n");
}

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

TEST(Extxyz, VoigtAndFullStressBecomeVirial) {
  test::TempDir dir;
  // Lattice rows a=(2,0,0), b=(1,3,0), c=(0.5,0.5,4): volume 2*3*4 = 24.
  write_text(dir / "s.xyz",
             "1\nLattice=\"2 0 0 1 3 0 0.5 0.5 4\" Properties=species:S:1:pos:R:3 stress=\"1 2 3 4 5 6\"\n"
             "Cu 0 0 0\n"
             "1\nLattice=\"2 0 0 1 3 0 0.5 0.5 4\" Properties=species:S:1:pos:R:3 stress=\"1 6 5 6 2 4 5 4 3\"\n"
             "Cu 0 0 0\n");
  const std::vector<System> systems = read_extxyz(dir / "s.xyz");
  ASSERT_EQ(systems.size(), 1u);
  const std::vector<double> expected = {-24, -144, -120, -144, -48, -96, -120, -96, -72};
  EXPECT_EQ(std::vector<double>(systems[0].virial.begin(), systems[0].virial.begin() + 9), expected);
  EXPECT_EQ(std::vector<double>(systems[0].virial.begin() + 9, systems[0].virial.end()), expected);
  EXPECT_EQ(systems[0].frame_box(0)[3], 1.0);  // b_x: Lattice lists cell vectors, not columns
}

TEST(Extxyz, PbcFlags) {
  test::TempDir dir;
  write_text(dir / "p.xyz",
             "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3\nAr 0 0 0\n"            // default T
             "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3 pbc=\"F F F\"\nAr 0 0 0\n"
             "1\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n");                                     // default F
  const std::vector<System> systems = read_extxyz(dir / "p.xyz");
  ASSERT_EQ(systems.size(), 2u);  // a change of periodicity starts a new system
  EXPECT_TRUE(systems[0].pbc);
  EXPECT_EQ(systems[0].nframes, 1);
  EXPECT_FALSE(systems[1].pbc);
  EXPECT_EQ(systems[1].nframes, 2);
  EXPECT_EQ(systems[1].frame_box(0)[0], 3.0);  // a given Lattice is kept even without pbc
  EXPECT_EQ(systems[1].frame_box(1)[0], 0.0);

  write_text(dir / "mixed.xyz", "1\nLattice=\"3 0 0 0 3 0 0 0 3\" pbc=\"T T F\"\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "mixed.xyz"); }, {dir / "mixed.xyz", "frame 0", "mixed periodicity"});
  write_text(dir / "nolattice.xyz", "1\npbc=\"T T T\"\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "nolattice.xyz"); }, {dir / "nolattice.xyz", "no Lattice"});
}

TEST(Extxyz, ConsecutiveSpeciesSequencesFormSystems) {
  test::TempDir dir;
  const std::string water = "3\nProperties=species:S:1:pos:R:3 energy=-1\nO 0 0 0\nH 1 0 0\nH 0 1 0\n";
  const std::string methane =
      "5\nProperties=species:S:1:pos:R:3 energy=-2\nC 0 0 0\nH 1 0 0\nH 0 1 0\nH 0 0 1\nH 1 1 1\n";
  const std::string flipped = "3\nProperties=species:S:1:pos:R:3 energy=-3\nH 1 0 0\nO 0 0 0\nH 0 1 0\n";
  write_text(dir / "g.xyz", water + water + methane + methane + methane + flipped);
  const std::vector<System> systems = read_extxyz(dir / "g.xyz");
  ASSERT_EQ(systems.size(), 3u);
  EXPECT_EQ(systems[0].nframes, 2);
  EXPECT_EQ(systems[1].nframes, 3);
  EXPECT_EQ(systems[2].nframes, 1);  // same formula, different atom order: a new system
  EXPECT_EQ(systems[0].type_map, (std::vector<std::string>{"O", "H", "C"}));
  EXPECT_EQ(systems[0].types, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(systems[1].types, (std::vector<int32_t>{2, 1, 1, 1, 1}));
  EXPECT_EQ(systems[2].types, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(systems[1].energy, (std::vector<double>{-2, -2, -2}));
  EXPECT_NE(systems[1].path.find("frames 2-4"), std::string::npos) << systems[1].path;
}

TEST(Extxyz, WrongAtomCountNamesFileAndFrame) {
  test::TempDir dir;
  // Frame 1 announces 3 atoms but has 2, so the next count line is read as an atom.
  write_text(dir / "count.xyz",
             "1\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n"
             "3\nProperties=species:S:1:pos:R:3\nAr 0 0 0\nAr 1 0 0\n"
             "1\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "count.xyz"); }, {dir / "count.xyz", "frame 1", "line 8"});
  write_text(dir / "short.xyz", "4\nProperties=species:S:1:pos:R:3\nAr 0 0 0\nAr 1 0 0\n");
  expect_error([&] { read_extxyz(dir / "short.xyz"); }, {dir / "short.xyz", "frame 0", "ends after 2 of 4"});
  write_text(dir / "nocount.xyz", "two\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "nocount.xyz"); }, {dir / "nocount.xyz", "frame 0", "number of atoms"});
}

TEST(Extxyz, BadLatticeNamesFileAndFrame) {
  test::TempDir dir;
  const std::string good = "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3\nAr 0 0 0\n";
  write_text(dir / "eight.xyz", good + "1\nLattice=\"3 0 0 0 3 0 0 0\" Properties=species:S:1:pos:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "eight.xyz"); }, {dir / "eight.xyz", "frame 1", "Lattice needs 9 numbers"});
  write_text(dir / "word.xyz", good + "1\nLattice=\"3 0 0 0 x 0 0 0 3\" Properties=species:S:1:pos:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "word.xyz"); }, {dir / "word.xyz", "frame 1", "'x'"});
  write_text(dir / "flat.xyz", "1\nLattice=\"3 0 0 0 3 0 0 0 0\" stress=\"1 2 3 4 5 6\"\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "flat.xyz"); }, {dir / "flat.xyz", "frame 0", "zero volume"});
}

TEST(Extxyz, OtherMalformedInput) {
  test::TempDir dir;
  write_text(dir / "cols.xyz", "1\nProperties=species:S:1:pos:R:3:forces:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "cols.xyz"); }, {dir / "cols.xyz", "frame 0", "4 columns", "announce 7"});
  write_text(dir / "labels.xyz",
             "1\nProperties=species:S:1:pos:R:3 energy=1\nAr 0 0 0\n1\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n");
  expect_error([&] { read_extxyz(dir / "labels.xyz"); }, {dir / "labels.xyz", "frame 1", "energy"});
  write_text(dir / "empty.xyz", "\n\n");
  expect_error([&] { read_extxyz(dir / "empty.xyz"); }, {dir / "empty.xyz", "no frames"});
  write_text(dir / "nan.xyz", "1\nProperties=species:S:1:pos:R:3\nAr nan 0 0\n");
  expect_error([&] { read_extxyz(dir / "nan.xyz"); }, {dir / "nan.xyz", "frame 0", "'nan'"});
}

}  // namespace
}  // namespace atomforge::data
