#pragma once
// The md input file: its declared schema (defaults documented there) and the resolved options.
#include <cstdint>
#include <optional>
#include <string>

#include "core/config_schema.hpp"

namespace atomforge::md {

config::Node md_input_schema();

struct MdOptions {
  std::string model;  // paths resolved against the input file's folder
  std::string head;   // empty: the model's only head
  std::string device = "cpu";
  std::string start_file;
  int64_t start_frame = 0;
  std::string ensemble;  // "nve", "langevin", "nose-hoover"
  double temperature = 0, tau_fs = 0;
  int chain = 1;
  std::optional<double> initial_temperature;
  double timestep_fs = 0.5;
  int64_t steps = 0;
  uint64_t seed = 1;
  double skin = 1.0;
  int64_t thermo_every = 10;
  std::string trajectory_file;  // relative to the output folder
  int64_t trajectory_every = 0;  // 0: none
  int64_t rdf_every = 0;         // 0: no RDF
  double rdf_rmax = 6.0;
  int64_t rdf_nbins = 200, rdf_start = 0;
  int64_t msd_every = 0;  // 0: no MSD
  int64_t msd_start = 0;
};

// Reads, validates (unknown keys are errors) and resolves `path`; also returns the resolved JSON.
MdOptions read_md_input(const std::string& path, config::json* resolved = nullptr);

}  // namespace atomforge::md
