#pragma once
// The molecular dynamics driver: start frame, initial velocities, integrator, and the outputs in
// one folder: thermo.out, the extxyz trajectory, rdf.out, msd.out.
#include <string>

#include "md/md_input.hpp"

namespace atomforge::md {

struct MdSummary {
  int64_t steps = 0;
  int64_t neighbor_list_builds = 0;
  double final_temperature = 0;
};

MdSummary run_md(const MdOptions& options, const std::string& output_dir);

}  // namespace atomforge::md
