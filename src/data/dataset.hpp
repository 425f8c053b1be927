#pragma once
// A data set: many systems, a batch size per system, a sampling probability per system, and a
// seeded, checkpointable stream of batches. Each batch is `batch_size` frames of ONE system.
// Within a system, frames are visited in a fresh seeded permutation each epoch; a new epoch starts
// when fewer than batch_size frames remain. The whole stream is a pure function of the seed and
// the state (draw counter, per-system epoch and cursor), so a restored state continues exactly.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/system.hpp"

namespace atomforge::data {

struct Batch {
  int system = 0;
  std::vector<int64_t> frames;
};

class DataSet {
 public:
  DataSet(std::vector<System> systems, std::vector<int64_t> batch_sizes, std::vector<double> probabilities,
          uint64_t seed);

  Batch next();
  // Data parallelism: every rank draws the same batches of `factor` x the batch size and keeps
  // its own share, so N ranks see exactly the frames one rank with N x the batch would.
  void scale_batch_sizes(int64_t factor);
  const std::vector<System>& systems() const { return systems_; }
  const std::vector<int64_t>& batch_sizes() const { return batch_sizes_; }
  const std::vector<double>& probabilities() const { return probabilities_; }
  int64_t total_frames() const;

  nlohmann::json state() const;
  void restore(const nlohmann::json& state);  // error if it does not fit these systems

  // DeePMD-kit's batch_size: an integer, a list (one per system), "auto" (smallest b with
  // b * natoms >= 32) or "auto:N" (b * natoms >= N).
  static std::vector<int64_t> resolve_batch_sizes(const nlohmann::json& spec, const std::vector<System>& systems);
  // DeePMD-kit's auto_prob: "prob_uniform", "prob_sys_size" (proportional to frames; default),
  // "prob_sys_size;s0:s1:w;..." (blocks of systems with weights); or explicit sys_probs.
  static std::vector<double> resolve_probabilities(const std::string& auto_prob, const std::vector<double>& sys_probs,
                                                   const std::vector<System>& systems);

 private:
  std::vector<System> systems_;
  std::vector<int64_t> batch_sizes_;
  std::vector<double> probabilities_;
  uint64_t seed_;
  uint64_t draws_ = 0;
  std::vector<uint64_t> epoch_;
  std::vector<int64_t> cursor_;
  std::vector<std::vector<int64_t>> order_;  // current epoch's permutation, derived from (seed, system, epoch)
  void start_epoch(std::size_t system);
};

// splitmix64: a tiny, portable, counter-friendly generator (std distributions differ between
// standard libraries; our streams must not). splitmix64(x) is the generator's output for state x;
// uniform01(x) maps the top 53 bits of splitmix64(x) to [0, 1), so uniform01(k + i * 0x9e3779b97f4a7c15)
// for i = 0, 1, ... is the standard splitmix64 stream seeded with k.
uint64_t splitmix64(uint64_t x);
double uniform01(uint64_t x);

}  // namespace atomforge::data
