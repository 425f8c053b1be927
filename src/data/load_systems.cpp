#include "data/load_systems.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/extxyz.hpp"

namespace atomforge::data {

std::vector<System> load_systems(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("system '{}' does not exist", path);
  if (fs::is_regular_file(path)) {
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".xyz" || ext == ".extxyz") return read_extxyz(path);
    fail("'{}' is a file but not extended XYZ (.xyz/.extxyz); npy systems are folders", path);
  }
  std::vector<System> systems;
  for (const auto& dir : find_systems(path)) systems.push_back(read_deepmd_system(dir));
  return systems;
}

}  // namespace atomforge::data
