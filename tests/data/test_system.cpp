// Reference values for the shared data were read with numpy (np.load) and are written here as
// literals; float32 data are given as float literals, whose exact value the reader must return.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.hpp"
#include "data/npy.hpp"
#include "data/system.hpp"
#include "test_util.hpp"

namespace atomforge::data {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::shared_data;

double f32(float v) { return static_cast<double>(v); }

TEST(SystemShared, WaterTwoFloat32SetsAreConcatenatedInOrder) {
  AF_REQUIRE_SHARED("deepmd-examples/water/data_1");
  const System s = read_deepmd_system(shared_data("deepmd-examples/water/data_1"));
  EXPECT_EQ(s.nframes, 160);
  ASSERT_EQ(s.natoms(), 192);
  EXPECT_EQ(s.type_map, (std::vector<std::string>{"O", "H"}));
  for (int i = 0; i < 192; ++i) EXPECT_EQ(s.types[i], i < 64 ? 0 : 1) << i;
  EXPECT_TRUE(s.pbc);
  ASSERT_EQ(s.coord.size(), 160u * 576u);
  ASSERT_EQ(s.force.size(), 160u * 576u);
  ASSERT_EQ(s.box.size(), 160u * 9u);
  ASSERT_EQ(s.energy.size(), 160u);
  EXPECT_FALSE(s.has_virial());
  // set.000 holds frames 0-79, set.001 frames 80-159.
  EXPECT_EQ(s.energy[0], f32(-29943.611f));
  EXPECT_EQ(s.energy[79], f32(-29943.492f));
  EXPECT_EQ(s.energy[80], f32(-29944.06f));
  EXPECT_EQ(s.energy[159], f32(-29943.248f));
  EXPECT_EQ(s.coord[0], f32(7.3582306f));
  EXPECT_EQ(s.coord[1], f32(2.019682f));
  EXPECT_EQ(s.coord[2], f32(4.9152203f));
  EXPECT_EQ(s.frame_coord(80)[0], f32(7.3031473f));
  EXPECT_EQ(s.coord.back(), f32(7.330171f));
  EXPECT_EQ(s.force[0], f32(-1.1792816f));
  EXPECT_EQ(s.force[1], f32(-0.117890954f));
  EXPECT_EQ(s.force.back(), f32(-2.90268f));
  const double* box = s.frame_box(100);
  for (int k = 0; k < 9; ++k) EXPECT_EQ(box[k], k % 4 == 0 ? f32(12.444661f) : 0.0) << k;
}

TEST(SystemShared, NopbcWithoutBoxHasZeroBox) {
  AF_REQUIRE_SHARED("deepmd-examples/nopbc/C1H4O2");
  const System s = read_deepmd_system(shared_data("deepmd-examples/nopbc/C1H4O2"));
  EXPECT_FALSE(s.pbc);
  EXPECT_EQ(s.nframes, 1562);
  EXPECT_EQ(s.types, (std::vector<int32_t>{1, 1, 1, 1, 0, 2, 2}));
  EXPECT_EQ(s.type_map, (std::vector<std::string>{"C", "H", "O"}));
  ASSERT_EQ(s.box.size(), 1562u * 9u);
  for (const double v : s.box) ASSERT_EQ(v, 0.0);
  EXPECT_EQ(s.energy[0], f32(-5184.9404f));
  EXPECT_EQ(s.energy[1561], f32(-5188.1865f));
  const double* last = s.frame_coord(1561) + 6 * 3;
  EXPECT_EQ(last[0], f32(11.239f));
  EXPECT_EQ(last[1], f32(15.4372f));
  EXPECT_EQ(last[2], f32(1.66403f));
}

TEST(SystemShared, MetalWithVirial) {
  AF_REQUIRE_SHARED("metals/Cu_mishin1/train/Cu32");
  const System s = read_deepmd_system(shared_data("metals/Cu_mishin1/train/Cu32"));
  EXPECT_TRUE(s.pbc);
  EXPECT_EQ(s.nframes, 128);
  EXPECT_EQ(s.natoms(), 32);
  EXPECT_EQ(s.type_map, std::vector<std::string>{"Cu"});
  ASSERT_EQ(s.virial.size(), 128u * 9u);
  const double w0[9] = {12.736286258350024,  0.23983438278310462, 0.48214665819062835,
                        0.23983438278310462, 12.479131880379887,  0.38101250723577795,
                        0.48214665819062835, 0.38101250723577795, 13.142339329177114};
  for (int k = 0; k < 9; ++k) EXPECT_EQ(s.virial[k], w0[k]) << k;
  EXPECT_EQ(s.virial[127 * 9 + 8], 25.949404806539192);
  EXPECT_EQ(s.energy[0], -112.31555706549435);
  EXPECT_EQ(s.energy[127], -105.90001433624604);
  // A triclinic frame: rows are the cell vectors a, b, c.
  const double b127[9] = {7.296923495652, 0.0, 0.0, -0.049935432291, 7.25657561006, 0.0,
                          -0.155262833435, -0.063246130149, 7.162963260752};
  for (int k = 0; k < 9; ++k) EXPECT_EQ(s.frame_box(127)[k], b127[k]) << k;
  EXPECT_EQ(s.coord[5 * 96 + 7], 7.199958677329487);
  EXPECT_EQ(s.force[5 * 96 + 7], -0.26987649231425576);
}

TEST(SystemShared, FindSystemsIsRecursiveAndSorted) {
  AF_REQUIRE_SHARED("deepmd-examples");
  const std::string root = shared_data("deepmd-examples");
  const std::vector<std::string> found = find_systems(root);
  const std::vector<std::string> names = {"nopbc/C1H4O2", "nopbc/C3H3O4", "nopbc/C4H3O1", "water/data_0",
                                          "water/data_1", "water/data_2", "water/data_3"};
  ASSERT_EQ(found.size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(fs::path(found[i]), fs::path(root) / names[i]) << i;
  }
  // A system folder is its own single result.
  EXPECT_EQ(find_systems(root + "/water/data_1"), std::vector<std::string>{root + "/water/data_1"});
}

TEST(SystemShared, MapTypesByElementName) {
  AF_REQUIRE_SHARED("deepmd-examples/water/data_0");
  const System water = read_deepmd_system(shared_data("deepmd-examples/water/data_0"));
  const std::vector<int32_t> mapped = map_types(water, {"H", "C", "O"});
  for (int i = 0; i < 192; ++i) EXPECT_EQ(mapped[i], i < 64 ? 2 : 0) << i;
  expect_error([&] { map_types(water, {"H", "C"}); }, {water.path, "'O'"});
}

System small_system(bool pbc, bool virial) {
  System s;
  s.path = "hand-made";
  s.type_map = {"O", "H", "N"};  // N absent from the atoms: allowed, as in a global type_map
  s.types = {0, 1, 1};
  s.pbc = pbc;
  s.nframes = 2;
  for (int i = 0; i < 18; ++i) s.coord.push_back(i / 7.0 - 1.0);
  for (int f = 0; f < 2; ++f) {
    const double b[9] = {5.0 + f / 3.0, 0, 0, 0.1, 6.0, 0, -0.2, 0.3, 7.0};
    s.box.insert(s.box.end(), b, b + 9);
  }
  if (!pbc) std::fill(s.box.begin(), s.box.end(), 0.0);
  s.energy = {-1.0 / 3.0, -2.0 / 3.0};
  for (int i = 0; i < 18; ++i) s.force.push_back(1.0 / (i + 1.5));
  if (virial) {
    for (int i = 0; i < 18; ++i) s.virial.push_back(i * 0.1 + 1e-12);
  }
  return s;
}

void expect_same(const System& a, const System& b) {
  EXPECT_EQ(a.type_map, b.type_map);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(a.pbc, b.pbc);
  EXPECT_EQ(a.nframes, b.nframes);
  EXPECT_EQ(a.coord, b.coord);
  EXPECT_EQ(a.box, b.box);
  EXPECT_EQ(a.energy, b.energy);
  EXPECT_EQ(a.force, b.force);
  EXPECT_EQ(a.virial, b.virial);
}

TEST(System, WriteReadRoundTrip) {
  test::TempDir dir;
  const System periodic = small_system(true, true);
  write_deepmd_system(dir / "pbc", periodic);
  EXPECT_TRUE(fs::exists(dir / "pbc/set.000/virial.npy"));
  EXPECT_FALSE(fs::exists(dir / "pbc/nopbc"));
  EXPECT_EQ(read_file(dir / "pbc/type.raw"), "0\n1\n1\n");
  EXPECT_EQ(read_file(dir / "pbc/type_map.raw"), "O\nH\nN\n");
  EXPECT_EQ(read_npy(dir / "pbc/set.000/coord.npy").shape, (std::vector<int64_t>{2, 9}));
  EXPECT_EQ(read_npy(dir / "pbc/set.000/energy.npy").shape, (std::vector<int64_t>{2}));
  const System back = read_deepmd_system(dir / "pbc");
  EXPECT_EQ(back.path, dir / "pbc");
  expect_same(periodic, back);

  const System molecule = small_system(false, false);
  write_deepmd_system(dir / "mol", molecule);
  EXPECT_TRUE(fs::exists(dir / "mol/nopbc"));
  EXPECT_FALSE(fs::exists(dir / "mol/set.000/virial.npy"));
  expect_same(molecule, read_deepmd_system(dir / "mol"));
}

TEST(SystemShared, RealSystemRoundTrip) {
  AF_REQUIRE_SHARED("metals/Cu_mishin1/train/Cu32");
  test::TempDir dir;
  const System cu = read_deepmd_system(shared_data("metals/Cu_mishin1/train/Cu32"));
  write_deepmd_system(dir / "cu", cu);
  expect_same(cu, read_deepmd_system(dir / "cu"));
}

TEST(System, WriteRefusesNonEmptyFolder) {
  test::TempDir dir;
  write_deepmd_system(dir / "s", small_system(true, false));
  expect_error([&] { write_deepmd_system(dir / "s", small_system(true, false)); }, {dir / "s", "not empty"});
}

TEST(System, SetsAreReadInNameOrderAndLabelsMayBeAbsent) {
  test::TempDir dir;
  write_file_atomic(dir / "type.raw", "0 0\n");
  // Two sets created in reverse order: set.002 must come first.
  write_npy(dir / "set.010/coord.npy", {1, 6}, {1, 1, 1, 2, 2, 2});
  write_npy(dir / "set.010/box.npy", {1, 9}, {9, 0, 0, 0, 9, 0, 0, 0, 9});
  write_npy(dir / "set.002/coord.npy", {2, 2, 3}, {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  write_npy(dir / "set.002/box.npy", {2, 9}, std::vector<double>(18, 3.0));
  const System s = read_deepmd_system(dir.str());
  EXPECT_EQ(s.nframes, 3);
  EXPECT_TRUE(s.type_map.empty());
  EXPECT_FALSE(s.has_energy());
  EXPECT_FALSE(s.has_force());
  EXPECT_EQ(s.coord, (std::vector<double>{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(s.box[0], 3.0);
  EXPECT_EQ(s.box[18], 9.0);
  // Without a type_map, indices are used directly and must fit the model's map.
  EXPECT_EQ(map_types(s, {"Cu"}), (std::vector<int32_t>{0, 0}));
  expect_error([&] { map_types(s, {}); }, {dir.str(), "type 0"});
}

// A valid two-atom, two-frame system to be broken by each malformed case.
void write_valid(const test::TempDir& dir) {
  write_file_atomic(dir / "type.raw", "0\n1\n");
  write_file_atomic(dir / "type_map.raw", "H\nO\n");
  write_npy(dir / "set.000/coord.npy", {2, 6}, std::vector<double>(12, 0.5));
  write_npy(dir / "set.000/box.npy", {2, 9}, std::vector<double>(18, 4.0));
  write_npy(dir / "set.000/energy.npy", {2, 1}, {-1, -2});
  write_npy(dir / "set.000/force.npy", {2, 6}, std::vector<double>(12, 0.1));
}

TEST(System, ValidBaselineReads) {
  test::TempDir dir;
  write_valid(dir);
  const System s = read_deepmd_system(dir.str());
  EXPECT_EQ(s.nframes, 2);
  EXPECT_EQ(s.energy, (std::vector<double>{-1, -2}));
}

TEST(System, MissingFolder) {
  test::TempDir dir;
  expect_error([&] { read_deepmd_system(dir / "nowhere"); }, {dir / "nowhere", "does not exist"});
  expect_error([&] { find_systems(dir / "nowhere"); }, {dir / "nowhere", "does not exist"});
  expect_error([&] { find_systems(dir.str()); }, {dir.str(), "no system"});
}

TEST(System, MissingCoord) {
  test::TempDir dir;
  write_valid(dir);
  fs::remove(dir / "set.000/coord.npy");
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.000", "missing coord.npy"});
}

TEST(System, MissingBoxWithoutNopbc) {
  test::TempDir dir;
  write_valid(dir);
  fs::remove(dir / "set.000/box.npy");
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.000", "missing box.npy"});
  write_file_atomic(dir / "nopbc", "");
  const System s = read_deepmd_system(dir.str());
  EXPECT_FALSE(s.pbc);
  EXPECT_EQ(s.box, std::vector<double>(18, 0.0));
}

TEST(System, ForceShapeMismatch) {
  test::TempDir dir;
  write_valid(dir);
  write_npy(dir / "set.000/force.npy", {2, 9}, std::vector<double>(18, 0.1));
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.000/force.npy", "expected 2 frames x 6"});
}

TEST(System, EnergyFrameCountMismatch) {
  test::TempDir dir;
  write_valid(dir);
  write_npy(dir / "set.000/energy.npy", {3}, {1, 2, 3});
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.000/energy.npy", "expected 2 frames"});
}

TEST(System, CoordDisagreesWithTypeRaw) {
  test::TempDir dir;
  write_valid(dir);
  write_npy(dir / "set.001/coord.npy", {1, 9}, std::vector<double>(9, 0.5));
  write_npy(dir / "set.001/box.npy", {1, 9}, std::vector<double>(9, 4.0));
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.001/coord.npy", "x 6 values"});
}

TEST(System, LabelInOnlySomeSets) {
  test::TempDir dir;
  write_valid(dir);
  write_npy(dir / "set.001/coord.npy", {1, 6}, std::vector<double>(6, 0.5));
  write_npy(dir / "set.001/box.npy", {1, 9}, std::vector<double>(9, 4.0));
  write_npy(dir / "set.001/force.npy", {1, 6}, std::vector<double>(6, 0.5));
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.001", "lacks energy.npy"});
}

TEST(System, TypeIndexOutOfRange) {
  test::TempDir dir;
  write_valid(dir);
  write_file_atomic(dir / "type.raw", "0\n2\n");
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "type.raw", "atom 1 has type 2", "type_map.raw"});
}

TEST(System, TypeRawNotIntegers) {
  test::TempDir dir;
  write_valid(dir);
  write_file_atomic(dir / "type.raw", "0\nH\n");
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "type.raw", "'H'"});
}

TEST(System, NoSetFolder) {
  test::TempDir dir;
  write_valid(dir);
  fs::remove_all(dir / "set.000");
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir.str(), "no set.*"});
}

TEST(System, NanInLabels) {
  test::TempDir dir;
  write_valid(dir);
  // write_npy refuses NaN, so build the bad file from numpy's fixture instead.
  fs::copy_file(std::string(ATOMFORGE_SOURCE_DIR) + "/tests/data/fixtures/bad_nan.npy", dir / "set.000/energy.npy",
                fs::copy_options::overwrite_existing);
  expect_error([&] { read_deepmd_system(dir.str()); }, {dir / "set.000/energy.npy", "not finite"});
}

TEST(System, MapTypesNamesSystemAndMissingElement) {
  test::TempDir dir;
  write_valid(dir);
  const System s = read_deepmd_system(dir.str());
  EXPECT_EQ(map_types(s, {"O", "H"}), (std::vector<int32_t>{1, 0}));
  expect_error([&] { map_types(s, {"H", "C"}); }, {dir.str(), "'O'", "H C"});
}

TEST(System, FindSystemsSkipsNonSystemsAndSorts) {
  test::TempDir dir;
  for (const char* name : {"b/sys2", "a/sys1", "a/sys0", "c/deeper/sys3"}) {
    write_file_atomic(dir / (std::string(name) + "/type.raw"), "0\n");
  }
  fs::create_directories(dir / "empty/folder");
  const std::vector<std::string> found = find_systems(dir.str());
  const std::vector<std::string> expected = {dir / "a/sys0", dir / "a/sys1", dir / "b/sys2", dir / "c/deeper/sys3"};
  EXPECT_EQ(found, expected);
}

}  // namespace
}  // namespace atomforge::data
