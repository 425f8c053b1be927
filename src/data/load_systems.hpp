#pragma once
// Systems from what a user names: a DeePMD-kit npy system folder, a folder searched for such
// systems, or an extended XYZ file (.xyz/.extxyz: frames grouped by species sequence).
#include <string>
#include <vector>

#include "data/system.hpp"

namespace atomforge::data {

std::vector<System> load_systems(const std::string& path);

}  // namespace atomforge::data
