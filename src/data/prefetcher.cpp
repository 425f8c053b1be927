#include "data/prefetcher.hpp"

#include <numeric>

#include "core/error.hpp"

namespace atomforge::data {

std::vector<int64_t> LoadedBatch::rows() const {
  std::vector<int64_t> all(static_cast<std::size_t>(data.nframes));
  std::iota(all.begin(), all.end(), int64_t{0});
  return all;
}

Prefetcher::Prefetcher(DataSet set, int share, int shares)
    : set_(std::move(set)), share_(share), shares_(shares), consumed_state_(set_.state()) {
  if (shares < 1 || share < 0 || share >= shares) fail("data set: share {} of {} does not exist", share, shares);
}

Prefetcher::~Prefetcher() { stop(); }

// Draws one batch ahead: waits until the last one is taken, then prepares the next.
void Prefetcher::work() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || (!ready_ && !error_); });
      if (stopping_) return;
    }
    try {
      LoadedBatch loaded;
      loaded.batch = set_.next();
      if (shares_ > 1) {
        auto& frames = loaded.batch.frames;
        const auto size = static_cast<int64_t>(frames.size()) / shares_;
        frames = std::vector<int64_t>(frames.begin() + share_ * size, frames.begin() + (share_ + 1) * size);
      }
      loaded.data = take_frames(set_.systems()[static_cast<std::size_t>(loaded.batch.system)], loaded.batch.frames);
      nlohmann::json state = set_.state();
      std::lock_guard<std::mutex> lock(mutex_);
      ready_ = std::move(loaded);
      ready_state_ = std::move(state);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    changed_.notify_all();
  }
}

LoadedBatch Prefetcher::next() {
  // Started on first use, so that a restore() right after construction draws nothing twice.
  if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return ready_.has_value() || error_ != nullptr; });
  if (error_) std::rethrow_exception(error_);  // stays set: the stream cannot go on past it
  LoadedBatch out = std::move(*ready_);
  ready_.reset();
  consumed_state_ = std::move(ready_state_);
  lock.unlock();
  changed_.notify_all();
  return out;
}

void Prefetcher::stop() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
  stopping_ = false;
}

void Prefetcher::restore(const nlohmann::json& state) {
  stop();
  set_.restore(state);
  consumed_state_ = set_.state();
  ready_.reset();
  error_ = nullptr;
}

}  // namespace atomforge::data
