#include "train/checkpoint.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <unistd.h>

#include "core/error.hpp"

namespace atomforge::train {

namespace fs = std::filesystem;

std::string checkpoint_path(const std::string& dir, const std::string& prefix, int64_t step) {
  return (fs::path(dir) / (prefix + "-" + std::to_string(step) + ".pt")).string();
}

void write_checkpoint(const std::string& dir, const std::string& prefix, int64_t step, const TensorFile& file,
                      int keep) {
  const std::string path = checkpoint_path(dir, prefix, step);
  save_tensor_file(path, file);

  const fs::path link = fs::path(dir) / (prefix + ".pt");
  const fs::path tmp_link = fs::path(dir) / (prefix + ".pt.tmp." + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove(tmp_link, ec);
  fs::create_symlink(fs::path(path).filename(), tmp_link);
  fs::rename(tmp_link, link);

  // Prune: keep the newest `keep` steps of this prefix.
  const std::regex pattern(std::regex_replace(prefix, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                           R"(-(\d+)\.pt)");
  std::vector<std::pair<int64_t, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(fs::path(dir).empty() ? "." : dir)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, pattern)) found.emplace_back(std::stoll(match[1]), entry.path());
  }
  std::sort(found.begin(), found.end());
  for (std::size_t k = 0; k + keep < found.size(); ++k) fs::remove(found[k].second, ec);
}

}  // namespace atomforge::train
