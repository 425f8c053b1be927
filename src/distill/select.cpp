#include "distill/select.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <fmt/format.h>

#include "core/error.hpp"

namespace atomforge::distill {

double max_atomic_force(const data::System& system, int64_t f) {
  double largest = 0;
  const double* force = system.force.data() + f * 3 * system.natoms();
  for (int64_t i = 0; i < system.natoms(); ++i) {
    const double* fi = force + 3 * i;
    largest = std::max(largest, std::sqrt(fi[0] * fi[0] + fi[1] * fi[1] + fi[2] * fi[2]));
  }
  return largest;
}

namespace {

// "O64H128", and "_nopbc" for open systems: the folder name of a composition.
std::string composition_name(const data::System& s) {
  std::vector<std::pair<std::string, int64_t>> counts;
  for (const int32_t t : s.types) {
    const std::string& element = s.type_map[t];
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == element; });
    if (it == counts.end()) counts.emplace_back(element, 1);
    else ++it->second;
  }
  std::string name;
  for (const auto& [element, n] : counts) name += element + std::to_string(n);
  return s.pbc ? name : name + "_nopbc";
}

void append_frames(data::System& to, const data::System& from) {
  to.nframes += from.nframes;
  for (auto [source, target] : {std::pair{&from.coord, &to.coord}, std::pair{&from.box, &to.box},
                                std::pair{&from.energy, &to.energy}, std::pair{&from.force, &to.force},
                                std::pair{&from.virial, &to.virial}})
    target->insert(target->end(), source->begin(), source->end());
}

}  // namespace

Selection select_frames(const std::vector<data::System>& runs, const SelectOptions& o) {
  Selection sel;
  // (run, frame) of every frame that passes the force bound, in run order.
  std::vector<std::pair<std::size_t, int64_t>> kept;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    sel.explored += runs[r].nframes;
    for (int64_t f = 0; f < runs[r].nframes; ++f) {
      if (o.max_force && max_atomic_force(runs[r], f) > *o.max_force) {
        ++sel.dropped_max_force;
        continue;
      }
      kept.emplace_back(r, f);
    }
  }
  if (o.max_frames > 0 && static_cast<int64_t>(kept.size()) > o.max_frames) {
    std::vector<std::pair<std::size_t, int64_t>> spaced;
    for (int64_t k = 0; k < o.max_frames; ++k) spaced.push_back(kept[k * kept.size() / o.max_frames]);
    sel.dropped_max_frames = static_cast<int64_t>(kept.size()) - o.max_frames;
    kept = std::move(spaced);
  }
  if (kept.size() < 2) {
    fail("select: {} of {} explored frames kept ({} above max_force); at least 2 are needed for training and "
         "validation: explore longer or raise select.max_force",
         kept.size(), sel.explored, sel.dropped_max_force);
  }

  // Group by composition, in order of first appearance; runs with the same atoms merge.
  std::vector<data::System> groups;
  std::map<std::string, std::size_t> index;  // key: name + the exact type sequence
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::vector<int64_t> frames;
    for (const auto& [run, f] : kept)
      if (run == r) frames.push_back(f);
    if (frames.empty()) continue;
    data::System part = data::take_frames(runs[r], frames);
    std::string key = composition_name(part) + ":";
    for (const int32_t t : part.types) key += std::to_string(t) + ",";
    auto it = index.find(key);
    if (it == index.end()) {
      std::string name = composition_name(part);
      // Same counts, different atom order: a separate system with a distinct name.
      const auto taken = [&](const std::string& n) { return std::find(sel.names.begin(), sel.names.end(), n) != sel.names.end(); };
      for (int k = 1; taken(name); ++k) name = fmt::format("{}_{}", composition_name(part), k);
      index.emplace(key, groups.size());
      sel.names.push_back(name);
      groups.push_back(std::move(part));
    } else {
      append_frames(groups[it->second], part);
    }
  }

  std::mt19937_64 engine(o.seed);
  int64_t nvalid_total = 0;
  for (const auto& g : groups) {
    std::vector<int64_t> order(g.nframes);
    for (int64_t f = 0; f < g.nframes; ++f) order[f] = f;
    // Fisher-Yates on the engine's raw output: the same split with every standard library.
    for (int64_t i = g.nframes - 1; i > 0; --i) std::swap(order[i], order[engine() % static_cast<uint64_t>(i + 1)]);
    const int64_t nvalid = std::min<int64_t>(g.nframes - 1, std::llround(o.validation_fraction * g.nframes));
    std::vector<int64_t> valid(order.begin(), order.begin() + nvalid), train(order.begin() + nvalid, order.end());
    std::sort(valid.begin(), valid.end());
    std::sort(train.begin(), train.end());
    sel.train.push_back(data::take_frames(g, train));
    sel.valid.push_back(data::take_frames(g, valid));
    nvalid_total += nvalid;
  }
  if (nvalid_total == 0) {
    fail("select: no frame held out for validation ({} selected frames, validation_fraction {}): explore longer "
         "or raise select.validation_fraction",
         kept.size(), o.validation_fraction);
  }
  return sel;
}

}  // namespace atomforge::distill
