#include "core/tensor_file.hpp"

#include <cstring>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace atomforge {

namespace {

constexpr char kMagic[8] = {'A', 'T', 'O', 'M', 'F', 'R', 'G', '\n'};
constexpr std::size_t kAlign = 64;

uint64_t fnv1a(const char* data, std::size_t size, uint64_t hash = 1469598103934665603ULL) {
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ULL;
  }
  return hash;
}

void append_u64(std::string& out, uint64_t value) {
  char buffer[8];
  for (int i = 0; i < 8; ++i) buffer[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  out.append(buffer, 8);
}

uint64_t read_u64(const std::string& bytes, std::size_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return value;
}

DType dtype_from_name(const std::string& name, const std::string& file) {
  if (name == "float32") return DType::Float32;
  if (name == "float64") return DType::Float64;
  if (name == "int32") return DType::Int32;
  if (name == "int64") return DType::Int64;
  fail("{}: unknown array type '{}'", file, name);
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Float32:
    case DType::Int32: return 4;
    case DType::Float64:
    case DType::Int64: return 8;
  }
  return 0;
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
  }
  return "?";
}

int64_t Blob::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

// Layout: magic(8) | header length(8) | header JSON | padding to 64 | arrays, each 64-aligned |
// checksum(8) of everything before it.
std::string serialize_tensor_file(const TensorFile& file) {
  nlohmann::ordered_json header;
  header["format_version"] = TensorFile::kFormatVersion;
  header["meta"] = file.meta;
  nlohmann::ordered_json table = nlohmann::ordered_json::array();
  uint64_t offset = 0;
  for (const auto& [name, blob] : file.blobs) {
    if (blob.bytes.size() != static_cast<std::size_t>(blob.numel()) * dtype_size(blob.dtype))
      fail("internal: array '{}' has {} bytes for shape of {} values", name, blob.bytes.size(),
           blob.numel());
    table.push_back({{"name", name}, {"dtype", dtype_name(blob.dtype)}, {"shape", blob.shape},
                     {"offset", offset}, {"nbytes", blob.bytes.size()}});
    offset += (blob.bytes.size() + kAlign - 1) / kAlign * kAlign;
  }
  header["arrays"] = table;
  header["data_bytes"] = offset;
  const std::string header_text = header.dump();

  std::string out(kMagic, sizeof(kMagic));
  append_u64(out, header_text.size());
  out += header_text;
  out.resize((out.size() + kAlign - 1) / kAlign * kAlign, '\0');
  for (const auto& [name, blob] : file.blobs) {
    out += blob.bytes;
    out.resize((out.size() + kAlign - 1) / kAlign * kAlign, '\0');
  }
  append_u64(out, fnv1a(out.data(), out.size()));
  return out;
}

TensorFile parse_tensor_file(const std::string& bytes, const std::string& file) {
  if (bytes.size() < sizeof(kMagic) + 16 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    fail("{}: not an atomforge model or checkpoint file (bad magic)", file);
  const uint64_t header_size = read_u64(bytes, sizeof(kMagic));
  const std::size_t header_start = sizeof(kMagic) + 8;
  if (header_size > bytes.size() - header_start) fail("{}: truncated file (header)", file);
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.substr(header_start, header_size));
  } catch (const std::exception& e) {
    fail("{}: corrupt header: {}", file, e.what());
  }
  const int version = header.value("format_version", -1);
  if (version != TensorFile::kFormatVersion)
    fail("{}: file format version {} is not supported (this build reads version {})", file, version,
         TensorFile::kFormatVersion);
  const std::size_t data_start = (header_start + header_size + kAlign - 1) / kAlign * kAlign;
  const uint64_t data_bytes = header.at("data_bytes").get<uint64_t>();
  if (bytes.size() != data_start + data_bytes + 8)
    fail("{}: truncated or padded file: {} bytes, expected {}", file, bytes.size(),
         data_start + data_bytes + 8);
  const uint64_t stored = read_u64(bytes, bytes.size() - 8);
  if (stored != fnv1a(bytes.data(), bytes.size() - 8)) fail("{}: checksum mismatch (corrupt file)", file);

  TensorFile out;
  out.meta = header.at("meta");
  for (const auto& entry : header.at("arrays")) {
    Blob blob;
    blob.dtype = dtype_from_name(entry.at("dtype").get<std::string>(), file);
    blob.shape = entry.at("shape").get<std::vector<int64_t>>();
    const uint64_t offset = entry.at("offset").get<uint64_t>();
    const uint64_t nbytes = entry.at("nbytes").get<uint64_t>();
    if (offset + nbytes > data_bytes ||
        nbytes != static_cast<uint64_t>(blob.numel()) * dtype_size(blob.dtype))
      fail("{}: corrupt array table entry '{}'", file, entry.at("name").get<std::string>());
    blob.bytes = bytes.substr(data_start + offset, nbytes);
    out.blobs.emplace(entry.at("name").get<std::string>(), std::move(blob));
  }
  return out;
}

void save_tensor_file(const std::string& path, const TensorFile& file) {
  write_file_atomic(path, serialize_tensor_file(file));
}

TensorFile load_tensor_file(const std::string& path) { return parse_tensor_file(read_file(path), path); }

}  // namespace atomforge
