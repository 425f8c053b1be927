#pragma once
// No output file is ever half-written: contents go to a temporary name in the same folder, are
// flushed, then renamed over the target (rename is atomic within one file system).
#include <string>
#include <string_view>

namespace atomforge {

void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);

}  // namespace atomforge
