#include "train/input_cache.hpp"

#include <vector>

namespace atomforge::train {

namespace {

int64_t tensor_bytes(const model::ModelInput& in) {
  int64_t bytes = 0;
  for (const at::Tensor* t : {&in.atype, &in.atom_frame, &in.edge_center, &in.edge_neighbor, &in.edge_frame,
                              &in.edge_vec, &in.slot_index, &in.triplet_kj, &in.triplet_ji})
    if (t->defined()) bytes += static_cast<int64_t>(t->nbytes());
  return bytes;
}

}  // namespace

model::ModelInput InputCache::get(const model::EnergyModel& model, int set, const data::LoadedBatch& batch) {
  if (budget_ == 0) {
    misses_ += batch.data.nframes;
    return model.prepare(batch.data, batch.rows());
  }
  std::vector<model::ModelInput> frames;
  for (int64_t i = 0; i < batch.data.nframes; ++i) {
    const Key key{set, batch.batch.system, batch.batch.frames.at(static_cast<std::size_t>(i))};
    if (auto it = kept_.find(key); it != kept_.end()) {
      ++hits_;
      frames.push_back(it->second);
      continue;
    }
    ++misses_;
    frames.push_back(model.prepare(batch.data, {i}));
    const int64_t bytes = tensor_bytes(frames.back());
    if (bytes_ + bytes <= budget_) {
      kept_.emplace(key, frames.back());
      bytes_ += bytes;
    }
  }
  return frames.size() == 1 ? frames.front() : model::concatenate(frames);
}

}  // namespace atomforge::train
