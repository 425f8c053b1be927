#pragma once
// Systems from what a user names: a DeePMD-kit npy system folder, a folder searched for such
// systems, an extended XYZ file (.xyz/.extxyz: frames grouped by species sequence), or a packed
// data store (.afd; its systems are stored: frames stay in the mapped file until read).
#include <functional>
#include <string>
#include <vector>

#include "data/system.hpp"

namespace atomforge::data {

std::vector<System> load_systems(const std::string& path);

// The same systems handed to `visit` one at a time, each read just before its visit: memory
// holds one npy system at a time (an extended XYZ file is still read whole).
void for_each_system(const std::string& path, const std::function<void(System&&)>& visit);

}  // namespace atomforge::data
