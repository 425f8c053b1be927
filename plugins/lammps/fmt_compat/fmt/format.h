// LAMMPS' headers include "fmt/format.h" from the fmt v7 LAMMPS bundles, which liblammps-dev does
// not install; the system fmt (v9) stands in. Its templates name fmt::make_args_checked, which
// fmt 9 removed: declared here so that they parse. The plugin never instantiates them (it calls
// only the std::string overloads), so no fmt v7 symbol of liblammps is ever needed.
#pragma once
#include_next <fmt/format.h>

namespace fmt {
template <typename... Args, typename S>
auto make_args_checked(const S&, const Args&... args) {
  return make_format_args(args...);
}
}  // namespace fmt
