// Neighbour-list build time for liquid-water-like systems: random atoms at 0.1 atoms/A^3 in a
// cubic periodic box, cut-off 6 A (the range of common water models).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "graph/neighbor_list.hpp"

namespace {

void BM_BuildNeighborList(benchmark::State& state) {
  const int64_t natoms = state.range(0);
  const double length = std::cbrt(static_cast<double>(natoms) / 0.1);
  const double box[9] = {length, 0, 0, 0, length, 0, 0, 0, length};
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(0.0, length);
  std::vector<double> coord(3 * static_cast<std::size_t>(natoms));
  for (double& x : coord) x = uniform(rng);

  std::size_t pairs = 0;
  for (auto _ : state) {
    const auto nl = atomforge::graph::build_neighbor_list(coord.data(), natoms, box,
                                                          {true, true, true}, 6.0);
    pairs = nl.size();
    benchmark::DoNotOptimize(nl.neighbor.data());
  }
  state.counters["pairs"] = static_cast<double>(pairs);
  state.counters["atoms/s"] =
      benchmark::Counter(static_cast<double>(natoms), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BuildNeighborList)->Arg(192)->Arg(1536)->Arg(12288)->Unit(benchmark::kMicrosecond);

}  // namespace
