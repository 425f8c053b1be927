// The container format: exact round trip, and clear errors on truncated, corrupt, foreign files.
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "../temp_dir_test_util.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"

namespace atomforge {
namespace {

TensorFile sample() {
  TensorFile f;
  f.meta["type_map"] = {"O", "H"};
  f.meta["rcut"] = 6.0;
  Blob a;
  a.dtype = DType::Float64;
  a.shape = {2, 3};
  std::vector<double> values = {1.5, -2.25, 3.0, 1e-300, 0.1, -0.0};
  a.bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  f.blobs["a"] = a;
  Blob b;
  b.dtype = DType::Int32;
  b.shape = {5};
  std::vector<int32_t> ints = {1, -2, 3, 2147483647, 0};
  b.bytes.assign(reinterpret_cast<const char*>(ints.data()), ints.size() * sizeof(int32_t));
  f.blobs["b"] = b;
  return f;
}

std::string expect_error(const std::string& bytes) {
  try {
    parse_tensor_file(bytes, "model.pth");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.pth"), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(TensorFile, RoundTripIsExact) {
  const TensorFile f = sample();
  const TensorFile g = parse_tensor_file(serialize_tensor_file(f), "x");
  EXPECT_EQ(g.meta, f.meta);
  ASSERT_EQ(g.blobs.size(), 2u);
  for (const auto& [name, blob] : f.blobs) {
    EXPECT_EQ(g.blobs.at(name).bytes, blob.bytes);
    EXPECT_EQ(g.blobs.at(name).shape, blob.shape);
    EXPECT_EQ(g.blobs.at(name).dtype, blob.dtype);
  }
}

TEST(TensorFile, RejectsTruncatedCorruptAndForeignFiles) {
  const std::string bytes = serialize_tensor_file(sample());
  EXPECT_NE(expect_error(bytes.substr(0, bytes.size() - 20)).find("truncated"), std::string::npos);
  EXPECT_NE(expect_error(bytes.substr(0, 30)).find("truncated"), std::string::npos);
  std::string flipped = bytes;
  flipped[bytes.size() - 40] ^= 0x5a;
  EXPECT_NE(expect_error(flipped).find("checksum"), std::string::npos);
  EXPECT_NE(expect_error("PK\x03\x04 a zip file, not ours").find("bad magic"), std::string::npos);
  std::string future = bytes;
  const auto pos = future.find("\"format_version\":1");
  ASSERT_NE(pos, std::string::npos);
  future[pos + 17] = '9';
  EXPECT_NE(expect_error(future).find("version 9"), std::string::npos);
}

TEST(AtomicFile, WritesWholeFileAndLeavesNoTemporary) {
  const testing::TempDir temp;
  const auto dir = temp.path;
  const std::string path = (dir / "sub" / "out.txt").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second version");
  EXPECT_EQ(read_file(path), "second version");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub")) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace atomforge
