#include "data/packed_store.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checksum.hpp"
#include "core/error.hpp"

namespace atomforge::data {

namespace {

constexpr char kMagic[8] = {'\x89', 'A', 'F', 'D', '\r', '\n', '\x1a', '\n'};
constexpr uint32_t kByteOrderMark = 0x01020304;
constexpr uint64_t kAlignment = 64;
constexpr const char* kFormatName = "atomforge-packed-frames";

struct Preamble {
  char magic[8];
  uint32_t version;
  uint32_t byte_order;
  uint64_t header_offset;
  uint64_t header_size;
  uint64_t header_checksum;
  uint64_t file_size;
  uint64_t preamble_checksum;  // of the 48 bytes above
  uint64_t reserved;
};
static_assert(sizeof(Preamble) == 64, "the preamble is 64 bytes on disk");
constexpr std::size_t kChecksummedPreamble = offsetof(Preamble, preamble_checksum);

// A read-only mapping of a whole file, alive while any system of the store is.
class Mapping {
 public:
  Mapping(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open packed data store '{}': {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      fail("cannot stat packed data store '{}': {}", path, std::strerror(e));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ < sizeof(Preamble)) {
      ::close(fd);
      fail("'{}': truncated packed data store: {} bytes, less than its {}-byte preamble", path, size_, sizeof(Preamble));
    }
    void* base = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file
    if (base == MAP_FAILED) fail("cannot map packed data store '{}': {}", path, std::strerror(e));
    base_ = static_cast<const unsigned char*>(base);
    // Training reads frames in random order: from a cold disk, a frame should cost the pages it
    // lies on, not a read-ahead window around each.
    ::madvise(base, size_, MADV_RANDOM);
  }
  ~Mapping() { ::munmap(const_cast<unsigned char*>(base_), size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const unsigned char* base() const { return base_; }
  uint64_t size() const { return size_; }

 private:
  const unsigned char* base_ = nullptr;
  uint64_t size_ = 0;
};

Preamble check_preamble(const Mapping& map, const std::string& path) {
  Preamble p{};
  std::memcpy(&p, map.base(), sizeof p);
  if (std::memcmp(p.magic, kMagic, sizeof kMagic) != 0) {
    fail("'{}': not an atomforge packed data store (bad magic; stores are written by `atomforge pack`)", path);
  }
  if (p.byte_order != kByteOrderMark) fail("'{}': written on a machine of the other byte order", path);
  if (p.version != kPackedStoreVersion) {
    fail("'{}': packed data store format version {}, but this build reads version {}; pack the data again", path,
         p.version, kPackedStoreVersion);
  }
  if (checksum64(&p, kChecksummedPreamble) != p.preamble_checksum) {
    fail("'{}': corrupt packed data store: the preamble's checksum does not match", path);
  }
  if (map.size() < p.file_size) {
    fail("'{}': truncated packed data store: {} bytes, but {} were written (copy or pack it again)", path, map.size(),
         p.file_size);
  }
  if (map.size() > p.file_size) {
    fail("'{}': {} bytes after the end of the packed data store ({} bytes were written)", path,
         map.size() - p.file_size, p.file_size);
  }
  if (p.header_offset < sizeof(Preamble) || p.header_offset > p.file_size || p.header_size > p.file_size - p.header_offset) {
    fail("'{}': corrupt packed data store: header at {} ({} bytes) lies outside the file ({} bytes)", path,
         p.header_offset, p.header_size, p.file_size);
  }
  if (checksum64(map.base() + p.header_offset, p.header_size) != p.header_checksum) {
    fail("'{}': corrupt packed data store: the header's checksum does not match", path);
  }
  return p;
}

// One system of the header: metadata checked, arrays pointed into the mapping after their bounds
// are checked against the data region (everything before the header).
System stored_system(const nlohmann::json& entry, const std::shared_ptr<const Mapping>& map, uint64_t data_end,
                     const std::string& path) {
  System s;
  const std::string name = entry.at("name").get<std::string>();
  s.path = path + "[" + name + "]";
  s.type_map = entry.at("type_map").get<std::vector<std::string>>();
  s.types = entry.at("types").get<std::vector<int32_t>>();
  s.pbc = entry.at("pbc").get<bool>();
  s.nframes = entry.at("nframes").get<int64_t>();
  if (s.types.empty() || s.nframes <= 0) fail("system '{}' has {} atoms and {} frames", name, s.natoms(), s.nframes);
  for (std::size_t i = 0; i < s.types.size(); ++i) {
    if (s.types[i] < 0 || (!s.type_map.empty() && s.types[i] >= static_cast<int32_t>(s.type_map.size()))) {
      fail("system '{}': atom {} has type {} outside its type_map of {} elements", name, i, s.types[i], s.type_map.size());
    }
  }
  const auto& arrays = entry.at("arrays");
  const auto locate = [&](const std::string& array, uint64_t per_frame, uint64_t width) -> const void* {
    if (!arrays.contains(array)) return nullptr;
    const auto offset = arrays.at(array).at(0).get<uint64_t>(), bytes = arrays.at(array).at(1).get<uint64_t>();
    const auto frames = static_cast<uint64_t>(s.nframes);
    if (offset % kAlignment != 0 || offset < sizeof(Preamble) || offset > data_end || bytes > data_end - offset) {
      fail("system '{}': array {} at {} ({} bytes) is not 64-byte aligned inside the data (bytes 64..{})", name, array,
           offset, bytes, data_end);
    }
    if (bytes % (per_frame * width) != 0 || bytes / (per_frame * width) != frames) {
      fail("system '{}': array {} has {} bytes, not {} frames x {} values", name, array, bytes, frames, per_frame);
    }
    return map->base() + offset;
  };
  s.stored.owner = map;
  for (const FrameArray& a : frame_arrays(s)) {
    s.stored.*a.stored = static_cast<const double*>(locate(a.name, static_cast<uint64_t>(a.per_frame), sizeof(double)));
  }
  s.stored.checksum = static_cast<const uint64_t*>(locate("checksum", 1, sizeof(uint64_t)));
  if (s.stored.coord == nullptr) fail("system '{}' has no coord array", name);
  if (s.pbc && s.stored.box == nullptr) fail("system '{}' is periodic but has no box array", name);
  return s;
}

}  // namespace

int64_t PackedStore::total_frames() const {
  int64_t n = 0;
  for (const System& s : systems) n += s.nframes;
  return n;
}

bool is_packed_store_path(const std::string& path) { return std::filesystem::path(path).extension() == ".afd"; }

PackedStore open_packed_store(const std::string& path) {
  auto map = std::make_shared<const Mapping>(path);
  const Preamble p = check_preamble(*map, path);
  PackedStore store;
  store.path = path;
  store.file_size = p.file_size;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(map->base() + p.header_offset, map->base() + p.header_offset + p.header_size);
    if (header.at("format") != kFormatName || header.at("version") != kPackedStoreVersion || header.at("dtype") != "<f8") {
      fail("format {}, version {}, dtype {}; expected {}, {}, <f8", header.at("format").dump(),
           header.at("version").dump(), header.at("dtype").dump(), kFormatName, kPackedStoreVersion);
    }
    const auto& systems = header.at("systems");
    for (std::size_t i = 0; i < systems.size(); ++i) store.systems.push_back(stored_system(systems.at(i), map, p.header_offset, path));
  } catch (const nlohmann::json::exception& e) {
    fail("'{}': corrupt packed data store header: {}", path, e.what());
  } catch (const Error&) {
    rethrow_with_context(fmt::format("'{}': corrupt packed data store header", path));
  }
  if (store.systems.empty()) fail("'{}': the packed data store holds no system", path);
  return store;
}

PackedStoreWriter::PackedStoreWriter(const std::string& path) : path_(path), file_(path) {
  const Preamble placeholder{};
  write(&placeholder, sizeof placeholder);
}

void PackedStoreWriter::write(const void* data, uint64_t bytes) {
  file_.stream().write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!file_.stream()) fail("writing packed data store '{}' failed (disk full?)", path_);
  pos_ += bytes;
}

void PackedStoreWriter::align() {
  static const char zeros[kAlignment] = {};
  if (pos_ % kAlignment != 0) write(zeros, kAlignment - pos_ % kAlignment);
}

void PackedStoreWriter::add(const System& system, const std::string& name) {
  const auto frames = static_cast<std::size_t>(system.nframes);
  if (system.natoms() == 0 || system.nframes <= 0) fail("cannot pack system '{}': it has no atoms or no frames", name);
  for (std::size_t i = 0; i < system.types.size(); ++i) {
    const int32_t t = system.types[i];
    if (t < 0 || (!system.type_map.empty() && t >= static_cast<int32_t>(system.type_map.size())))
      fail("cannot pack system '{}': atom {} has type {} outside its type_map", name, i, t);
  }
  if (system.pbc && !system.has_box()) fail("cannot pack system '{}': it is periodic but has no box", name);
  nlohmann::json arrays = nlohmann::json::object();
  for (const FrameArray& a : frame_arrays(system)) {
    if (!a.present) continue;
    const std::size_t values = frames * static_cast<std::size_t>(a.per_frame);
    if (!system.is_stored() && (system.*a.values).size() != values) {
      fail("cannot pack system '{}': {} has {} values, expected {} frames x {}", name, a.name,
           (system.*a.values).size(), frames, a.per_frame);
    }
    align();
    arrays[a.name] = {pos_, values * sizeof(double)};
    write((system.*a.frame)(0), values * sizeof(double));  // frames are contiguous in either backing
  }
  std::vector<uint64_t> checksums(frames);
  for (std::size_t f = 0; f < frames; ++f) {
    verify_frame(system, static_cast<int64_t>(f));  // a damaged source is not packed as sound
    checksums[f] = frame_checksum(system, static_cast<int64_t>(f));
  }
  align();
  arrays["checksum"] = {pos_, frames * sizeof(uint64_t)};
  write(checksums.data(), frames * sizeof(uint64_t));
  systems_.push_back({{"name", name},
                      {"type_map", system.type_map},
                      {"types", system.types},
                      {"pbc", system.pbc},
                      {"nframes", system.nframes},
                      {"arrays", std::move(arrays)}});
  frames_ += system.nframes;
}

void PackedStoreWriter::finish() {
  if (systems_.empty()) fail("packed data store '{}': no system to pack", path_);
  const std::string header =
      nlohmann::json{{"format", kFormatName}, {"version", kPackedStoreVersion}, {"dtype", "<f8"}, {"systems", systems_}}.dump();
  align();
  Preamble p{};
  std::memcpy(p.magic, kMagic, sizeof kMagic);
  p.version = kPackedStoreVersion;
  p.byte_order = kByteOrderMark;
  p.header_offset = pos_;
  p.header_size = header.size();
  p.header_checksum = checksum64(header.data(), header.size());
  write(header.data(), header.size());
  p.file_size = pos_;
  p.preamble_checksum = checksum64(&p, kChecksummedPreamble);
  file_.stream().seekp(0);
  file_.stream().write(reinterpret_cast<const char*>(&p), sizeof p);
  file_.commit();
}

}  // namespace atomforge::data
