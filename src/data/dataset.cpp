#include "data/dataset.hpp"

#include <cmath>
#include <numeric>
#include <sstream>
#include <tuple>

#include "core/error.hpp"

namespace atomforge::data {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
// Domain tags keep the system-choice stream and the frame-order streams independent.
constexpr uint64_t kDrawTag = 0x6472617773797374ULL;   // "drawsyst"
constexpr uint64_t kOrderTag = 0x6f72646572667261ULL;  // "orderfra"

// Order-sensitive combination of two words into one well-mixed word.
uint64_t combine(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b + kGolden)); }

std::string state_error(const std::string& why) { return "cannot restore the data set state: " + why; }

}  // namespace

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + kGolden;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The top 53 bits of the hashed word: every double in [0, 1) with step 2^-53 is equally likely.
double uniform01(uint64_t x) { return static_cast<double>(splitmix64(x) >> 11) * 0x1.0p-53; }

DataSet::DataSet(std::vector<System> systems, std::vector<int64_t> batch_sizes, std::vector<double> probabilities,
                 uint64_t seed)
    : systems_(std::move(systems)),
      batch_sizes_(std::move(batch_sizes)),
      probabilities_(std::move(probabilities)),
      seed_(seed) {
  const std::size_t n = systems_.size();
  if (n == 0) fail("data set: no systems");
  if (batch_sizes_.size() != n || probabilities_.size() != n) {
    fail("data set: {} systems but {} batch sizes and {} probabilities", n, batch_sizes_.size(), probabilities_.size());
  }
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (systems_[i].nframes <= 0) fail("data set: system '{}' has no frames", systems_[i].path);
    if (batch_sizes_[i] <= 0) fail("data set: system '{}' has batch size {}", systems_[i].path, batch_sizes_[i]);
    if (!(probabilities_[i] >= 0) || !std::isfinite(probabilities_[i])) {
      fail("data set: system '{}' has probability {}", systems_[i].path, probabilities_[i]);
    }
    total += probabilities_[i];
  }
  if (!(total > 0)) fail("data set: the system probabilities sum to {}", total);
  for (double& p : probabilities_) p /= total;
  epoch_.assign(n, 0);
  cursor_.assign(n, 0);
  order_.resize(n);
  for (std::size_t i = 0; i < n; ++i) start_epoch(i);
}

// Fisher-Yates shuffle driven by a splitmix64 stream keyed on (seed, system, epoch), so any
// epoch's order can be recomputed from the state alone.
void DataSet::start_epoch(std::size_t system) {
  const int64_t nframes = systems_[system].nframes;
  std::vector<int64_t>& order = order_[system];
  order.resize(static_cast<std::size_t>(nframes));
  std::iota(order.begin(), order.end(), int64_t{0});
  const uint64_t key = combine(combine(combine(seed_, kOrderTag), system), epoch_[system]);
  for (int64_t i = nframes - 1; i > 0; --i) {
    const double u = uniform01(key + static_cast<uint64_t>(i) * kGolden);
    auto j = static_cast<int64_t>(u * static_cast<double>(i + 1));
    if (j > i) j = i;  // u < 1, but keep the bound explicit
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  cursor_[system] = 0;
}

Batch DataSet::next() {
  const double u = uniform01(combine(combine(seed_, kDrawTag), draws_));
  ++draws_;
  std::size_t chosen = systems_.size();
  double cumulative = 0;
  for (std::size_t i = 0; i < systems_.size(); ++i) {
    cumulative += probabilities_[i];
    if (probabilities_[i] > 0 && u < cumulative) {
      chosen = i;
      break;
    }
  }
  if (chosen == systems_.size()) {  // u beyond the rounded total: the last system that can be drawn
    for (std::size_t i = systems_.size(); i-- > 0;) {
      if (probabilities_[i] > 0) {
        chosen = i;
        break;
      }
    }
  }

  Batch batch;
  batch.system = static_cast<int>(chosen);
  const int64_t nframes = systems_[chosen].nframes;
  const int64_t size = batch_sizes_[chosen];
  // DeePMD-kit starts a new epoch when the rest of this one cannot fill the batch; a batch
  // larger than the system wraps into further epochs, so frames may repeat within it.
  if (nframes - cursor_[chosen] < size) {
    ++epoch_[chosen];
    start_epoch(chosen);
  }
  batch.frames.reserve(static_cast<std::size_t>(size));
  while (static_cast<int64_t>(batch.frames.size()) < size) {
    if (cursor_[chosen] == nframes) {
      ++epoch_[chosen];
      start_epoch(chosen);
    }
    batch.frames.push_back(order_[chosen][static_cast<std::size_t>(cursor_[chosen]++)]);
  }
  return batch;
}

void DataSet::scale_batch_sizes(int64_t factor) {
  if (factor < 1) fail("data set: batch scale {} is not positive", factor);
  for (auto& size : batch_sizes_) size *= factor;
}

int64_t DataSet::total_frames() const {
  int64_t total = 0;
  for (const System& s : systems_) total += s.nframes;
  return total;
}

nlohmann::json DataSet::state() const {
  std::vector<int64_t> nframes;
  for (const System& s : systems_) nframes.push_back(s.nframes);
  return {{"seed", seed_}, {"draws", draws_}, {"epoch", epoch_}, {"cursor", cursor_}, {"nframes", nframes}};
}

// The state carries its own seed: a resumed run continues the stream it was on even if the
// DataSet was constructed with another seed. Frame counts are checked, so a state saved for other
// data is refused; batch sizes and probabilities may change between runs.
void DataSet::restore(const nlohmann::json& state) {
  const std::size_t n = systems_.size();
  uint64_t seed = 0, draws = 0;
  std::vector<uint64_t> epoch;
  std::vector<int64_t> cursor, nframes;
  try {
    seed = state.at("seed").get<uint64_t>();
    draws = state.at("draws").get<uint64_t>();
    epoch = state.at("epoch").get<std::vector<uint64_t>>();
    cursor = state.at("cursor").get<std::vector<int64_t>>();
    nframes = state.at("nframes").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", state_error("malformed state"), e.what());
  }
  if (epoch.size() != n || cursor.size() != n || nframes.size() != n) {
    fail("{}: it is for {} systems, this data set has {}", state_error("different data"), nframes.size(), n);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (nframes[i] != systems_[i].nframes) {
      fail("{}: system {} ('{}') had {} frames, now {}", state_error("different data"), i, systems_[i].path,
           nframes[i], systems_[i].nframes);
    }
    if (cursor[i] < 0 || cursor[i] > nframes[i]) {
      fail("{}: cursor {} of system {} is outside 0..{}", state_error("malformed state"), cursor[i], i, nframes[i]);
    }
  }
  seed_ = seed;
  draws_ = draws;
  epoch_ = std::move(epoch);
  for (std::size_t i = 0; i < n; ++i) {
    start_epoch(i);
    cursor_[i] = cursor[i];
  }
}

std::vector<int64_t> DataSet::resolve_batch_sizes(const nlohmann::json& spec, const std::vector<System>& systems) {
  const std::size_t n = systems.size();
  const auto positive = [](const nlohmann::json& v, const std::string& where) {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail("{} must be a positive integer, got {}", where, v.dump());
    return v.get<int64_t>();
  };
  if (spec.is_number()) return std::vector<int64_t>(n, positive(spec, "batch_size"));
  if (spec.is_array()) {
    if (spec.size() != n) fail("batch_size lists {} values for {} systems", spec.size(), n);
    std::vector<int64_t> sizes;
    for (std::size_t i = 0; i < n; ++i) sizes.push_back(positive(spec[i], fmt::format("batch_size[{}]", i)));
    return sizes;
  }
  if (!spec.is_string()) fail("batch_size must be an integer, a list or \"auto[:N]\", got {}", spec.dump());
  const std::string text = spec.get<std::string>();
  int64_t rule = 32;
  if (text.rfind("auto:", 0) == 0) {
    const std::string number = text.substr(5);
    std::size_t used = 0;
    try {
      rule = std::stoll(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != number.size() || rule <= 0) fail("batch_size \"{}\": N in auto:N must be a positive integer", text);
  } else if (text != "auto") {
    fail("batch_size \"{}\" is not \"auto\" or \"auto:N\"", text);
  }
  // DeePMD-kit: the smallest batch whose atom count reaches the rule.
  std::vector<int64_t> sizes;
  for (const System& s : systems) {
    if (s.natoms() <= 0) fail("batch_size \"{}\": system '{}' has no atoms", text, s.path);
    sizes.push_back((rule + s.natoms() - 1) / s.natoms());
  }
  return sizes;
}

std::vector<double> DataSet::resolve_probabilities(const std::string& auto_prob, const std::vector<double>& sys_probs,
                                                   const std::vector<System>& systems) {
  const std::size_t n = systems.size();
  if (n == 0) fail("no systems to assign probabilities to");
  const auto normalised = [](std::vector<double> p, const std::string& what) {
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    if (!(total > 0)) fail("{}: the probabilities sum to {}, they must sum to a positive number", what, total);
    for (double& v : p) v /= total;
    return p;
  };
  if (!sys_probs.empty()) {
    if (sys_probs.size() != n) fail("sys_probs lists {} values for {} systems", sys_probs.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!(sys_probs[i] >= 0) || !std::isfinite(sys_probs[i])) fail("sys_probs[{}] = {} is negative", i, sys_probs[i]);
    }
    return normalised(sys_probs, "sys_probs");
  }
  if (auto_prob == "prob_uniform") return std::vector<double>(n, 1.0 / static_cast<double>(n));
  std::string spec = auto_prob.empty() || auto_prob == "prob_sys_size" ? fmt::format("prob_sys_size;0:{}:1", n) : auto_prob;
  if (spec.rfind("prob_sys_size;", 0) != 0) {
    fail("auto_prob \"{}\" is not prob_uniform, prob_sys_size or prob_sys_size;start:end:weight;...", auto_prob);
  }
  // Each block start:end (systems start..end-1) gets weight / sum(weights); within a block,
  // systems share it in proportion to their frame counts (DeePMD-kit's prob_sys_size_ext).
  std::vector<double> probs(n, 0.0);
  std::vector<std::tuple<std::size_t, std::size_t, double>> blocks;
  std::istringstream in(spec.substr(std::string("prob_sys_size;").size()));
  std::string block;
  double weight_total = 0;
  while (std::getline(in, block, ';')) {
    long long start = 0, end = 0;
    double weight = 0;
    char c1 = 0, c2 = 0, extra = 0;
    std::istringstream fields(block);
    fields >> start >> c1 >> end >> c2 >> weight;
    if (!fields || c1 != ':' || c2 != ':' || (fields >> extra) || start < 0 || end <= start ||
        end > static_cast<long long>(n) || !(weight >= 0) || !std::isfinite(weight)) {
      fail("auto_prob \"{}\": block '{}' must be start:end:weight with 0 <= start < end <= {} and weight >= 0",
           auto_prob, block, n);
    }
    blocks.emplace_back(static_cast<std::size_t>(start), static_cast<std::size_t>(end), weight);
    weight_total += weight;
  }
  if (blocks.empty() || !(weight_total > 0)) fail("auto_prob \"{}\": no block with a positive weight", auto_prob);
  for (const auto& [start, end, weight] : blocks) {
    double frames = 0;
    for (std::size_t i = start; i < end; ++i) frames += static_cast<double>(systems[i].nframes);
    if (!(frames > 0)) fail("auto_prob \"{}\": block {}:{} has no frames", auto_prob, start, end);
    for (std::size_t i = start; i < end; ++i) {
      probs[i] = weight / weight_total * static_cast<double>(systems[i].nframes) / frames;
    }
  }
  return probs;
}

}  // namespace atomforge::data
