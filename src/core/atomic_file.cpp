#include "core/atomic_file.hpp"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "core/error.hpp"

namespace atomforge {

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail("cannot open '{}' for writing", tmp_);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  out_.close();
  std::remove(tmp_.c_str());
}

void AtomicFileWriter::commit() {
  out_.flush();
  if (!out_) fail("write to '{}' failed (disk full?)", tmp_);
  out_.close();
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) fail("cannot rename '{}' to '{}': {}", tmp_, path_, ec.message());
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter out(path);
  out.stream().write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace atomforge
