#pragma once
// One exception type for every user-facing failure. The message must name the file, key or
// frame at fault: the CLI prints it as is and exits non-zero.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace atomforge {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Prefixes an error raised while handling `context` (a file, a key) with that context.
[[noreturn]] void rethrow_with_context(const std::string& context);

}  // namespace atomforge
