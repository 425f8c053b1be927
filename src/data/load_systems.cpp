#include "data/load_systems.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/extxyz.hpp"
#include "data/packed_store.hpp"

namespace atomforge::data {

void for_each_system(const std::string& path, const std::function<void(System&&)>& visit) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("system '{}' does not exist", path);
  if (fs::is_regular_file(path)) {
    const std::string ext = fs::path(path).extension().string();
    std::vector<System> systems;
    if (ext == ".xyz" || ext == ".extxyz") {
      systems = read_extxyz(path);
    } else if (is_packed_store_path(path)) {
      systems = open_packed_store(path).systems;
    } else {
      fail("'{}' is a file but neither extended XYZ (.xyz/.extxyz) nor a packed data store (.afd); npy systems are "
           "folders",
           path);
    }
    for (System& s : systems) visit(std::move(s));
    return;
  }
  for (const auto& dir : find_systems(path)) visit(read_deepmd_system(dir));
}

std::vector<System> load_systems(const std::string& path) {
  std::vector<System> systems;
  for_each_system(path, [&](System&& s) { systems.push_back(std::move(s)); });
  return systems;
}

}  // namespace atomforge::data
