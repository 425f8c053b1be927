#pragma once
// The distill input file: its declared schema (defaults documented there) and the resolved options.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config_schema.hpp"

namespace atomforge::distill {

config::Node distill_input_schema();

struct ExploreOptions {
  std::vector<double> temperatures;  // K, one Langevin run per start frame and temperature
  int64_t steps = 0;                 // per run
  double timestep_fs = 0.5;
  int64_t every = 10;  // a frame every this many steps (step 0, the start frame, is not taken)
  uint64_t seed = 1;
  double tau_fs = 100;  // 1/friction
  double skin = 1.0;
};

struct SelectOptions {
  std::optional<double> max_force;  // eV/A: frames where the teacher's largest atomic force is above are dropped
  int64_t max_frames = 0;           // 0: every frame; else evenly spaced over the explored frames
  double validation_fraction = 0.2;
  uint64_t seed = 1;
};

struct DistillOptions {
  std::string teacher;  // paths resolved against the input file's folder
  std::string head;     // empty: the teacher's only head
  std::vector<std::string> start_systems;
  std::vector<int64_t> start_frames;
  ExploreOptions explore;
  SelectOptions select;
  config::json student;  // model, learning_rate, loss, training; data systems filled in by distill
  std::vector<std::string> original_data;
  int64_t chunk = 8;           // frames per teacher or student evaluation
  int64_t timing_repeats = 5;  // evaluations timed per model (median)
};

// Reads, validates (unknown keys are errors) and resolves `path`; also returns the resolved JSON.
DistillOptions read_distill_input(const std::string& path, config::json* resolved = nullptr);

}  // namespace atomforge::distill
