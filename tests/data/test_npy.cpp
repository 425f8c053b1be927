// The fixtures were written by numpy (tests/data/fixtures/make_npy_fixtures.py); the expected
// values below are the script's formulas recomputed here, never output of our reader.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.hpp"
#include "data/npy.hpp"
#include "test_util.hpp"

namespace atomforge::data {
namespace {

using test::expect_error;

std::string fixture(const std::string& name) { return std::string(ATOMFORGE_SOURCE_DIR) + "/tests/data/fixtures/" + name; }

TEST(Npy, ZeroDimensionalFloat64) {
  const NpyArray a = read_npy(fixture("f8_0d.npy"));
  EXPECT_TRUE(a.shape.empty());
  EXPECT_EQ(a.dtype, "<f8");
  EXPECT_EQ(a.numel(), 1);
  EXPECT_EQ(a.values, std::vector<double>{3.5});
}

TEST(Npy, OneDimensionalFloat64) {
  const NpyArray a = read_npy(fixture("f8_1d.npy"));
  EXPECT_EQ(a.shape, std::vector<int64_t>{5});
  ASSERT_EQ(a.values.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.values[i], 0.5 * i - 1.0) << i;
}

TEST(Npy, TwoDimensionalFloat64IsBitExact) {
  const NpyArray a = read_npy(fixture("f8_2d.npy"));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 4}));
  ASSERT_EQ(a.values.size(), 12u);
  // i / 3 is not a short decimal: equality checks every bit came through.
  for (int i = 0; i < 12; ++i) EXPECT_EQ(a.values[i], i / 3.0) << i;
}

TEST(Npy, ThreeDimensionalFloat64InCOrder) {
  const NpyArray a = read_npy(fixture("f8_3d.npy"));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 4}));
  ASSERT_EQ(a.numel(), 24);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(a.values[i], i - 7.25) << i;
  // C order: element [1][2][3] is flat index 1*12 + 2*4 + 3 = 23.
  EXPECT_EQ(a.values[23], 23 - 7.25);
}

TEST(Npy, Float32IsPromotedExactly) {
  const NpyArray a = read_npy(fixture("f4_2d.npy"));
  EXPECT_EQ(a.dtype, "<f4");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(a.values.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const float expected = static_cast<float>(i) * 0.1f;  // float32 arithmetic, as numpy did
    EXPECT_EQ(a.values[i], static_cast<double>(expected)) << i;
  }
  EXPECT_NE(a.values[1], 0.1);  // the float32 value, not a decimal re-reading
}

TEST(Npy, Int32) {
  const NpyArray a = read_npy(fixture("i4_1d.npy"));
  EXPECT_EQ(a.dtype, "<i4");
  EXPECT_EQ(a.shape, std::vector<int64_t>{7});
  for (int i = 0; i < 7; ++i) EXPECT_EQ(a.values[i], i - 3.0) << i;
}

TEST(Npy, Int64BeyondInt32Range) {
  const NpyArray a = read_npy(fixture("i8_2d.npy"));
  EXPECT_EQ(a.dtype, "<i8");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 2}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(a.values[i], static_cast<double>(i * (int64_t{1} << 40) - 5)) << i;
}

TEST(Npy, EmptyArray) {
  const NpyArray a = read_npy(fixture("f8_empty.npy"));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.values.empty());
}

TEST(Npy, FormatVersions2And3) {
  const NpyArray v2 = read_npy(fixture("f8_v2.npy"));
  EXPECT_EQ(v2.shape, (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v2.values[i], i + 0.25) << i;
  const NpyArray v3 = read_npy(fixture("f8_v3.npy"));
  EXPECT_EQ(v3.shape, (std::vector<int64_t>{3, 2}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v3.values[i], i - 0.75) << i;
}

TEST(Npy, NativeAndNotApplicableByteOrders) {
  const NpyArray eq = read_npy(fixture("f8_native_eq.npy"));
  EXPECT_EQ(eq.dtype, "=f8");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(eq.values[i], 0.5 * i - 1.0);
  const NpyArray pipe = read_npy(fixture("i4_pipe.npy"));
  EXPECT_EQ(pipe.dtype, "|i4");
  for (int i = 0; i < 7; ++i) EXPECT_EQ(pipe.values[i], i - 3.0);
}

TEST(Npy, MalformedFilesAreErrorsNamingTheFile) {
  const struct {
    const char* file;
    const char* says;
  } cases[] = {
      {"bad_truncated.npy", "truncated"},
      {"bad_trailing.npy", "unexpected bytes"},
      {"bad_magic.npy", "magic"},
      {"bad_version.npy", "version 4.0"},
      {"bad_fortran.npy", "Fortran"},
      {"bad_big_endian.npy", "big-endian"},
      {"bad_nan.npy", "not finite"},
      {"bad_inf_f4.npy", "not finite"},
      {"bad_dtype_u2.npy", "unsupported dtype '<u2'"},
      {"bad_dtype_complex.npy", "unsupported dtype '<c16'"},
      {"bad_structured.npy", "unsupported dtype"},
      {"bad_header.npy", "malformed npy header"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    expect_error([&] { read_npy(fixture(c.file)); }, {c.file, c.says});
  }
}

TEST(Npy, NanErrorGivesItsIndex) {
  expect_error([] { read_npy(fixture("bad_nan.npy")); }, {"flat index 1"});
}

TEST(Npy, MissingFile) {
  expect_error([] { read_npy(fixture("no_such.npy")); }, {"no_such.npy"});
}

// numpy's own bytes are the reference for our writer: same header text, padding and data.
TEST(Npy, WriterMatchesNumpyByteForByte) {
  test::TempDir dir;
  std::vector<double> thirds;
  for (int i = 0; i < 12; ++i) thirds.push_back(i / 3.0);
  write_npy(dir / "a.npy", {3, 4}, thirds);
  EXPECT_EQ(read_file(dir / "a.npy"), read_file(fixture("f8_2d.npy")));

  std::vector<double> halves;
  for (int i = 0; i < 5; ++i) halves.push_back(0.5 * i - 1.0);
  write_npy(dir / "b.npy", {5}, halves);
  EXPECT_EQ(read_file(dir / "b.npy"), read_file(fixture("f8_1d.npy")));

  write_npy(dir / "c.npy", {}, {3.5});
  EXPECT_EQ(read_file(dir / "c.npy"), read_file(fixture("f8_0d.npy")));

  std::vector<int64_t> big;
  for (int64_t i = 0; i < 6; ++i) big.push_back(i * (int64_t{1} << 40) - 5);
  write_npy_int(dir / "d.npy", {3, 2}, big);
  EXPECT_EQ(read_file(dir / "d.npy"), read_file(fixture("i8_2d.npy")));
}

TEST(Npy, WriterRejectsBadInput) {
  test::TempDir dir;
  expect_error([&] { write_npy(dir / "x.npy", {2, 2}, {1, 2, 3}); }, {"x.npy", "needs 4 values"});
  expect_error([&] { write_npy(dir / "y.npy", {2}, {1, std::nan("")}); }, {"y.npy", "non-finite"});
}

}  // namespace
}  // namespace atomforge::data
