#include "md/start_frame.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/extxyz.hpp"
#include "data/packed_store.hpp"

namespace atomforge::md {

data::System read_start_frame(const std::string& path, int64_t frame) {
  std::vector<data::System> systems;
  if (std::filesystem::is_directory(path)) {
    systems.push_back(data::read_deepmd_system(path));
  } else if (data::is_packed_store_path(path) && std::filesystem::exists(path)) {
    systems = data::open_packed_store(path).systems;
  } else if (std::filesystem::exists(path)) {
    systems = data::read_extxyz(path);
  } else {
    fail("start file '{}' does not exist", path);
  }
  int64_t total = 0;
  for (const auto& s : systems) total += s.nframes;
  const int64_t index = frame < 0 ? total + frame : frame;
  if (index < 0 || index >= total) fail("'{}': frame {} out of range ({} frames)", path, frame, total);
  int64_t f = index;
  for (const auto& s : systems) {
    if (f >= s.nframes) {
      f -= s.nframes;
      continue;
    }
    data::System one = data::take_frames(s, {f});
    one.path = fmt::format("{} frame {}", path, index);
    one.energy.clear();
    one.force.clear();
    one.virial.clear();
    return one;
  }
  fail("'{}': frame {} not found", path, frame);  // unreachable: index < total
}

}  // namespace atomforge::md
