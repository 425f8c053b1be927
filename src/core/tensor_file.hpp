#pragma once
// The on-disk container for checkpoints and model files: a JSON header that describes the file
// (format version, model config, type map, cut-off, precision, trainer state) followed by named
// little-endian arrays. It needs no libtorch to read, so the C API and tools can inspect it, and
// it is checked on load: magic, version, sizes and a checksum, so a truncated or corrupt file is
// an error naming the file, never garbage.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atomforge {

enum class DType : int { Float32, Float64, Int32, Int64 };
std::size_t dtype_size(DType dtype);
std::string dtype_name(DType dtype);

struct Blob {
  DType dtype = DType::Float64;
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian values, C order
  int64_t numel() const;
};

struct TensorFile {
  static constexpr int kFormatVersion = 1;
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  std::map<std::string, Blob> blobs;
};

std::string serialize_tensor_file(const TensorFile& file);
TensorFile parse_tensor_file(const std::string& bytes, const std::string& name_for_errors);
void save_tensor_file(const std::string& path, const TensorFile& file);  // atomic
TensorFile load_tensor_file(const std::string& path);

}  // namespace atomforge
