#pragma once
// NumPy .npy reader (format versions 1.0, 2.0, 3.0; little-endian or byte-order-free
// f4/f8/i4/i8; C order). Values are returned as double or int64 whatever the stored type, so
// float32 data (DeePMD-kit's water example) is promoted on read. Every malformed input (bad
// magic, bad header, Fortran order, big-endian, unsupported type, truncated data, NaN/inf in
// float data) is an atomforge::Error naming the file.
#include <cstdint>
#include <string>
#include <vector>

namespace atomforge::data {

struct NpyArray {
  std::vector<int64_t> shape;
  std::string dtype;            // as stored: "<f4", "<f8", "<i4", "<i8" ("|" or "=" byte orders too)
  std::vector<double> values;   // C order, promoted to double (float and integer arrays)
  int64_t numel() const;
};

NpyArray read_npy(const std::string& path);
// Writes a little-endian float64 (or int64 with write_npy_int) array, version 1.0, atomically.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<double>& values);
void write_npy_int(const std::string& path, const std::vector<int64_t>& shape, const std::vector<int64_t>& values);

}  // namespace atomforge::data
