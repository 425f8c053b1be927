#pragma once
// No output file is ever half-written: contents go to a temporary name in the same folder, are
// flushed, then renamed over the target (rename is atomic within one file system).
#include <fstream>
#include <string>
#include <string_view>

namespace atomforge {

void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);

// The same for output too large to hold in memory: write to stream(), then commit(). Destroyed
// without commit() (an error on the way), the temporary file is removed and `path` is untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  std::ofstream& stream() { return out_; }
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace atomforge
