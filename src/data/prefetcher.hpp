#pragma once
// A DataSet whose next batch is drawn, and its frames copied out of the systems, on a background
// thread while the caller works on the current one: a packed store's pages are read there, not in
// the training step. The batches, their order and state() are exactly those of the DataSet used
// directly, so seeded runs and restarts are unchanged.
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/dataset.hpp"

namespace atomforge::data {

struct LoadedBatch {
  Batch batch;  // which system and frames the data set drew (this share's)
  System data;  // those frames, resident: frame i of `data` is frame batch.frames[i] of the system
  std::vector<int64_t> rows() const;  // 0 .. n-1: every frame of `data`, for prepare/make_labels
};

class Prefetcher {
 public:
  // With `shares` > 1 (data parallelism), every batch the data set draws is cut into `shares`
  // equal slices and only slice `share` is loaded and returned.
  explicit Prefetcher(DataSet set, int share = 0, int shares = 1);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  LoadedBatch next();
  // The data set's state after the batches next() has returned (not the one drawn ahead).
  nlohmann::json state() const { return consumed_state_; }
  // Drops the batch drawn ahead; the next batch is the restored stream's.
  void restore(const nlohmann::json& state);

  const std::vector<System>& systems() const { return set_.systems(); }
  const std::vector<int64_t>& batch_sizes() const { return set_.batch_sizes(); }
  int64_t total_frames() const { return set_.total_frames(); }

 private:
  void work();
  void stop();

  DataSet set_;  // after the worker starts, only the worker calls its non-const members
  int share_, shares_;
  nlohmann::json consumed_state_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<LoadedBatch> ready_;
  nlohmann::json ready_state_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace atomforge::data
