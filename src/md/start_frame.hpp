#pragma once
// The frame a molecular dynamics run starts from.
#include <string>

#include "data/system.hpp"

namespace atomforge::md {

// Frame `frame` (negative: from the end) of an extxyz file, counted over all its systems, or of a
// DeePMD npy system folder, as a one-frame System (labels dropped, velocities kept).
data::System read_start_frame(const std::string& path, int64_t frame);

}  // namespace atomforge::md
