#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/dataset.hpp"
#include "test_util.hpp"

namespace atomforge::data {
namespace {

using test::expect_error;

System make_system(int64_t nframes, int natoms, const std::string& name = "sys") {
  System s;
  s.path = name;
  s.types.assign(static_cast<std::size_t>(natoms), 0);
  s.nframes = nframes;
  s.coord.assign(static_cast<std::size_t>(nframes * natoms * 3), 0.0);
  s.box.assign(static_cast<std::size_t>(nframes * 9), 0.0);
  return s;
}

std::vector<System> systems_with_frames(const std::vector<int64_t>& nframes) {
  std::vector<System> systems;
  for (std::size_t i = 0; i < nframes.size(); ++i) systems.push_back(make_system(nframes[i], 3, "sys" + std::to_string(i)));
  return systems;
}

// Reference outputs of splitmix64 seeded with 1234567 (Vigna's splitmix64.c; also Java's
// SplittableRandom and rand_xoshiro's tests): the stream is x += golden; mix(x).
TEST(Random, Splitmix64MatchesReferenceStream) {
  const uint64_t golden = 0x9e3779b97f4a7c15ULL;
  const uint64_t expected[5] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                4593380528125082431ULL, 16408922859458223821ULL};
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(splitmix64(1234567 + i * golden), expected[i]) << i;
  EXPECT_EQ(uniform01(1234567), static_cast<double>(expected[0] >> 11) / 9007199254740992.0);
}

TEST(Random, Uniform01IsInUnitIntervalWithMeanOneHalf) {
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = uniform01(static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of n uniforms: standard deviation sqrt(1/12/n).
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12.0 / n));
}

TEST(DataSet, SystemFrequenciesFollowProbabilities) {
  const std::vector<double> p = {0.2, 0.5, 0.0, 0.3};
  DataSet data(systems_with_frames({10, 20, 30, 40}), {1, 1, 1, 1}, p, 42);
  const int draws = 20000;
  std::vector<int> counts(p.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(data.next().system)];
  EXPECT_EQ(counts[2], 0);  // zero probability: never drawn
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double mean = draws * p[i];
    const double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma + 1e-9) << "system " << i;
  }
}

TEST(DataSet, ProbabilitiesAreNormalised) {
  DataSet data(systems_with_frames({5, 5}), {1, 1}, {1.0, 3.0}, 1);
  EXPECT_EQ(data.probabilities(), (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(data.total_frames(), 10);
}

TEST(DataSet, EveryFrameOncePerEpoch) {
  // 12 frames, batch 4: three batches make one epoch and together cover every frame once.
  DataSet data(systems_with_frames({12}), {4}, {1.0}, 7);
  std::vector<std::vector<int64_t>> epochs;
  for (int epoch = 0; epoch < 20; ++epoch) {
    std::vector<int64_t> seen;
    for (int b = 0; b < 3; ++b) {
      const Batch batch = data.next();
      ASSERT_EQ(batch.frames.size(), 4u);
      seen.insert(seen.end(), batch.frames.begin(), batch.frames.end());
    }
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(12);
    for (int64_t i = 0; i < 12; ++i) all[static_cast<std::size_t>(i)] = i;
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
    epochs.push_back(seen);
  }
  // Each epoch is reshuffled: 20 identical orders would mean no shuffling.
  EXPECT_GT(std::set<std::vector<int64_t>>(epochs.begin(), epochs.end()).size(), 15u);
}

TEST(DataSet, LeftoverFramesStartANewEpoch) {
  // 10 frames, batch 3: three batches (9 distinct frames) per epoch, the 10th frame is left over.
  DataSet data(systems_with_frames({10}), {3}, {1.0}, 3);
  std::vector<int> visits(10, 0);
  for (int epoch = 0; epoch < 200; ++epoch) {
    std::set<int64_t> in_epoch;
    for (int b = 0; b < 3; ++b) {
      for (const int64_t f : data.next().frames) {
        EXPECT_TRUE(in_epoch.insert(f).second) << "frame " << f << " repeated within epoch " << epoch;
        ++visits[static_cast<std::size_t>(f)];
      }
    }
    EXPECT_EQ(in_epoch.size(), 9u);
  }
  // Which frame is left over changes with the epoch: every frame is used most of the time.
  for (int f = 0; f < 10; ++f) EXPECT_GT(visits[static_cast<std::size_t>(f)], 120) << f;
}

TEST(DataSet, BatchLargerThanSystemWrapsIntoNewEpochs) {
  DataSet data(systems_with_frames({3}), {7}, {1.0}, 11);
  for (int b = 0; b < 10; ++b) {
    const Batch batch = data.next();
    ASSERT_EQ(batch.frames.size(), 7u);
    // Frames 0-2 and 3-5 are each a whole epoch (a permutation of 0, 1, 2); frame 6 opens another.
    for (int start : {0, 3}) {
      std::vector<int64_t> part(batch.frames.begin() + start, batch.frames.begin() + start + 3);
      std::sort(part.begin(), part.end());
      EXPECT_EQ(part, (std::vector<int64_t>{0, 1, 2}));
    }
    EXPECT_GE(batch.frames[6], 0);
    EXPECT_LT(batch.frames[6], 3);
  }
}

TEST(DataSet, SameSeedSameStreamOtherSeedOtherStream) {
  const auto stream = [](uint64_t seed) {
    DataSet data(systems_with_frames({10, 20, 30}), {2, 3, 4}, {0.3, 0.3, 0.4}, seed);
    std::vector<std::pair<int, std::vector<int64_t>>> out;
    for (int i = 0; i < 50; ++i) {
      const Batch b = data.next();
      out.emplace_back(b.system, b.frames);
    }
    return out;
  };
  EXPECT_EQ(stream(5), stream(5));
  EXPECT_NE(stream(5), stream(6));
}

TEST(DataSet, RestoredStateContinuesExactly) {
  const std::vector<int64_t> nframes = {7, 13, 4};
  const std::vector<int64_t> batch = {3, 5, 6};  // the last wraps
  const std::vector<double> probs = {0.2, 0.5, 0.3};
  DataSet original(systems_with_frames(nframes), batch, probs, 2024);
  for (int i = 0; i < 37; ++i) original.next();
  // Through text, as a checkpoint would store it.
  const nlohmann::json saved = nlohmann::json::parse(original.state().dump());
  std::vector<Batch> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(original.next());

  DataSet restored(systems_with_frames(nframes), batch, probs, 999);  // seed comes from the state
  restored.restore(saved);
  for (int i = 0; i < 60; ++i) {
    const Batch b = restored.next();
    EXPECT_EQ(b.system, expected[static_cast<std::size_t>(i)].system) << i;
    EXPECT_EQ(b.frames, expected[static_cast<std::size_t>(i)].frames) << i;
  }
}

TEST(DataSet, RestoreRejectsStateOfOtherData) {
  DataSet data(systems_with_frames({7, 13}), {1, 1}, {0.5, 0.5}, 1);
  nlohmann::json state = data.state();
  DataSet other(systems_with_frames({7, 14}), {1, 1}, {0.5, 0.5}, 1);
  expect_error([&] { other.restore(state); }, {"sys1", "13 frames"});
  DataSet fewer(systems_with_frames({7}), {1}, {1.0}, 1);
  expect_error([&] { fewer.restore(state); }, {"2 systems"});
  state["cursor"] = "x";
  expect_error([&] { data.restore(state); }, {"malformed state"});
}

TEST(DataSet, ConstructorRejectsBadInput) {
  expect_error([] { DataSet({}, {}, {}, 1); }, {"no systems"});
  expect_error([] { DataSet(systems_with_frames({3}), {0}, {1.0}, 1); }, {"sys0", "batch size 0"});
  expect_error([] { DataSet(systems_with_frames({3, 4}), {1}, {1.0, 1.0}, 1); }, {"2 systems"});
  expect_error([] { DataSet(systems_with_frames({3, 4}), {1, 1}, {0.0, 0.0}, 1); }, {"sum to 0"});
  expect_error([] { DataSet(systems_with_frames({0}), {1}, {1.0}, 1); }, {"sys0", "no frames"});
}

TEST(DataSet, ResolveBatchSizes) {
  std::vector<System> systems = {make_system(1, 192), make_system(1, 7), make_system(1, 32), make_system(1, 5),
                                 make_system(1, 33)};
  EXPECT_EQ(DataSet::resolve_batch_sizes(4, systems), (std::vector<int64_t>{4, 4, 4, 4, 4}));
  EXPECT_EQ(DataSet::resolve_batch_sizes(nlohmann::json::array({1, 2, 3, 4, 5}), systems),
            (std::vector<int64_t>{1, 2, 3, 4, 5}));
  // ceil(32 / natoms): 192 -> 1, 7 -> 5 (35 >= 32 > 28), 32 -> 1, 5 -> 7 (35 >= 32 > 30), 33 -> 1.
  EXPECT_EQ(DataSet::resolve_batch_sizes("auto", systems), (std::vector<int64_t>{1, 5, 1, 7, 1}));
  // ceil(100 / natoms): 192 -> 1, 7 -> 15 (105 >= 100 > 98), 32 -> 4, 5 -> 20, 33 -> 4 (132 >= 100 > 99).
  EXPECT_EQ(DataSet::resolve_batch_sizes("auto:100", systems), (std::vector<int64_t>{1, 15, 4, 20, 4}));
  expect_error([&] { DataSet::resolve_batch_sizes(0, systems); }, {"batch_size"});
  expect_error([&] { DataSet::resolve_batch_sizes(nlohmann::json::array({1, 2}), systems); }, {"2 values", "5 systems"});
  expect_error([&] { DataSet::resolve_batch_sizes(nlohmann::json::array({1, 2, 0, 4, 5}), systems); },
               {"batch_size[2]"});
  expect_error([&] { DataSet::resolve_batch_sizes("auto:x", systems); }, {"auto:x"});
  expect_error([&] { DataSet::resolve_batch_sizes("auto:0", systems); }, {"auto:0"});
  expect_error([&] { DataSet::resolve_batch_sizes("big", systems); }, {"big"});
  expect_error([&] { DataSet::resolve_batch_sizes(2.5, systems); }, {"batch_size"});
}

void expect_probs(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-15) << i;
}

TEST(DataSet, ResolveProbabilities) {
  const std::vector<System> systems = systems_with_frames({10, 30, 60});
  expect_probs(DataSet::resolve_probabilities("prob_uniform", {}, systems), {1.0 / 3, 1.0 / 3, 1.0 / 3});
  expect_probs(DataSet::resolve_probabilities("prob_sys_size", {}, systems), {0.1, 0.3, 0.6});
  expect_probs(DataSet::resolve_probabilities("", {}, systems), {0.1, 0.3, 0.6});  // the default
  // Block 0:2 gets 0.25 shared 10:30, block 2:3 gets 0.75.
  expect_probs(DataSet::resolve_probabilities("prob_sys_size;0:2:0.25;2:3:0.75", {}, systems),
               {0.0625, 0.1875, 0.75});
  // Weights are normalised: 1 and 3 -> 0.25 and 0.75; block 1:3 shared 30:60.
  expect_probs(DataSet::resolve_probabilities("prob_sys_size;0:1:1;1:3:3", {}, systems), {0.25, 0.25, 0.5});
  // Explicit sys_probs override auto_prob and are normalised.
  expect_probs(DataSet::resolve_probabilities("prob_uniform", {1, 1, 2}, systems), {0.25, 0.25, 0.5});
  expect_error([&] { DataSet::resolve_probabilities("", {1, 1}, systems); }, {"sys_probs", "3 systems"});
  expect_error([&] { DataSet::resolve_probabilities("", {1, -1, 1}, systems); }, {"sys_probs[1]"});
  expect_error([&] { DataSet::resolve_probabilities("prob_sys_size;0:5:1", {}, systems); }, {"0:5:1"});
  expect_error([&] { DataSet::resolve_probabilities("prob_sys_size;0:1", {}, systems); }, {"0:1"});
  expect_error([&] { DataSet::resolve_probabilities("prob_size", {}, systems); }, {"prob_size"});
}

}  // namespace
}  // namespace atomforge::data
