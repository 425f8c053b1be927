#pragma once
// The packed data store (.afd): the frames of many systems in one file that is memory-mapped, so
// that opening it costs O(systems) whatever the number of frames, any frame is found in O(1), and
// only the pages of frames actually read come into memory (the page cache, not the process heap).
//
// Format version 1 (native little-endian; all offsets in bytes from the start of the file):
//   0..63    preamble: magic "\x89AFD\r\n\x1a\n", u32 format version, u32 byte-order mark
//            0x01020304, u64 header offset, u64 header size, u64 header checksum, u64 file size,
//            u64 checksum of bytes 0..47, 8 zero bytes
//   64..     per system, each at a 64-byte-aligned offset: the float64 arrays coord
//            (nframes x natoms x 3), box (nframes x 9), energy (nframes), force (nframes x natoms
//            x 3), virial (nframes x 9), velocity (nframes x natoms x 3), those the system has;
//            then one u64 checksum per frame (data::frame_checksum)
//   header   JSON, written last so that packing streams: {"format": "atomforge-packed-frames",
//            "version": 1, "dtype": "<f8", "systems": [{"name", "type_map", "types", "pbc",
//            "nframes", "arrays": {"coord": [offset, bytes], ...}}]}
// Frame f of a system starts at (array offset) + f x (values per frame) x 8 in each array.
// Checksums (core/checksum.hpp): preamble and header on open; each frame when take_frames copies it.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "data/system.hpp"

namespace atomforge::data {

inline constexpr uint32_t kPackedStoreVersion = 1;

struct PackedStore {
  std::string path;
  uint64_t file_size = 0;
  std::vector<System> systems;  // stored systems: their frames stay in the mapped file
  int64_t total_frames() const;
};

// Maps `path` and checks its preamble, header and array bounds; errors name the file and what is
// wrong (not a store, other format version, truncated, corrupt header, array beyond the data).
PackedStore open_packed_store(const std::string& path);

bool is_packed_store_path(const std::string& path);  // by its extension, .afd

// Writes a store one system at a time: memory holds at most the system being added. Nothing
// appears at `path` until finish() (the file is written under a temporary name, then renamed).
class PackedStoreWriter {
 public:
  explicit PackedStoreWriter(const std::string& path);
  // Resident or stored; `name` is kept in the header (errors and reports name systems by it).
  void add(const System& system, const std::string& name);
  void finish();
  int64_t systems() const { return static_cast<int64_t>(systems_.size()); }
  int64_t frames() const { return frames_; }
  uint64_t bytes() const { return pos_; }

 private:
  void write(const void* data, uint64_t bytes);
  void align();
  std::string path_;
  AtomicFileWriter file_;
  uint64_t pos_ = 0;
  int64_t frames_ = 0;
  nlohmann::json systems_ = nlohmann::json::array();
};

}  // namespace atomforge::data
