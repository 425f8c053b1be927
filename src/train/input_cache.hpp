#pragma once
// Model inputs (neighbour list, edge vectors, slots, triplets) of single frames kept across
// epochs: a frame drawn again reuses what was built the first time instead of building it anew.
#include <cstdint>
#include <map>
#include <tuple>

#include "data/prefetcher.hpp"
#include "model/energy_model.hpp"

namespace atomforge::train {

class InputCache {
 public:
  // `budget_bytes` bounds what is kept; 0 keeps nothing (every batch is built afresh).
  explicit InputCache(int64_t budget_bytes) : budget_(budget_bytes) {}

  // The model input of `batch`, frames in the batch's order, equal to
  // model.prepare(batch.data, batch.rows()). `set` names the data set the batch was drawn from
  // (frame numbers are per data set). Frames kept hit; others are built one frame at a time and
  // kept while the budget allows. Once it is spent nothing more is admitted: with frames drawn
  // uniformly from more than fit, any replacement policy hits as often, and this one never
  // churns memory.
  model::ModelInput get(const model::EnergyModel& model, int set, const data::LoadedBatch& batch);

  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t bytes() const { return bytes_; }

 private:
  using Key = std::tuple<int, int, int64_t>;  // data set, system, frame
  int64_t budget_;
  int64_t bytes_ = 0, hits_ = 0, misses_ = 0;
  std::map<Key, model::ModelInput> kept_;
};

}  // namespace atomforge::train
