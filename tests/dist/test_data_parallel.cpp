// Data-parallel training with several processes on this machine (torchrun-style variables and
// mpirun), against one process: N ranks with batch b must train exactly as 1 rank with batch N*b.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "multi_process.hpp"

namespace atomforge {
namespace {

using namespace testing;

nlohmann::ordered_json water_input(int batch_size, int numb_steps) {
  auto input = small_water_input();
  input["training"]["training_data"]["batch_size"] = batch_size;
  input["training"]["validation_data"]["batch_size"] = batch_size;
  input["training"]["numb_steps"] = numb_steps;
  input["training"]["disp_freq"] = 2;
  input["training"]["save_freq"] = numb_steps / 2;
  return input;
}

TEST(DataParallel, TwoRanksWithBatchBEqualOneRankWithBatch2B) {
  TempDir dir;
  write_text(dir / "two.json", water_input(1, 8).dump());
  const Result one = train(dir, water_input(2, 8), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result two = run_ranks(dir, 2, "train " + (dir / "two.json") + " -o " + (dir / "two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("2 ranks, data parallel"), std::string::npos) << two.output;

  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-8.pt", dir / "two/model.ckpt-8.pt"), 1e-10);
  // The learning curve (training and validation errors) is the whole batch's, not rank 0's.
  expect_same_lcurve(dir / "one/lcurve.out", dir / "two/lcurve.out");
  // The parameters did move: equality is not that of two untouched models.
  EXPECT_GT(max_relative_difference(dir / "one/model.ckpt-4.pt", dir / "one/model.ckpt-8.pt"), 1e-4);
}

// The ranks meet through a file instead of a TCP store (a shared file system across nodes).
TEST(DataParallel, RendezvousThroughAFile) {
  TempDir dir;
  write_text(dir / "two.json", water_input(1, 4).dump());
  const Result one = train(dir, water_input(2, 4), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result two = run_ranks(dir, 2, "train " + (dir / "two.json") + " -o " + (dir / "two"), ATOMFORGE_BINARY,
                               "ATOMFORGE_RENDEZVOUS_FILE=" + (dir / "rendezvous"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-4.pt", dir / "two/model.ckpt-4.pt"), 1e-10);
}

// Three ranks under mpirun; the run stops half way and resumes with one process and the whole
// batch: the result is the uninterrupted one-process run's.
TEST(DataParallel, MpirunThreeRanksAndResumeAtAnotherWorldSize) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun (Debian: openmpi-bin)";
  TempDir dir;
  write_text(dir / "three.json", water_input(1, 8).dump());
  const Result one = train(dir, water_input(3, 8), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result three = run_shell(mpirun(3) + " train " + (dir / "three.json") + " -o " + (dir / "three") + " 2>&1");
  ASSERT_EQ(three.code, 0) << three.output;
  EXPECT_NE(three.output.find("3 ranks, data parallel"), std::string::npos) << three.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-8.pt", dir / "three/model.ckpt-8.pt"), 1e-10);

  const Result resumed = run("train " + (dir / "one.json") + " -o " + (dir / "three") + " --restart " +
                             (dir / "three/model.ckpt-4.pt"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-8.pt", dir / "three/model.ckpt-8.pt"), 1e-10);
}

// Multi-task, both modes: each step's task draw is shared, so every rank trains the same head
// ("sample") or all heads ("all") on its share of the batch.
class MultiTaskDataParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(MultiTaskDataParallel, TwoRanksEqualOneRankWithTheWholeBatch) {
  TempDir dir;
  write_text(dir / "two.json", two_task_input(GetParam(), 2, 2).dump());
  const Result one = train(dir, two_task_input(GetParam(), 4, 4), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result two = run_ranks(dir, 2, "train " + (dir / "two.json") + " -o " + (dir / "two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-6.pt", dir / "two/model.ckpt-6.pt"), 1e-10);
  expect_same_lcurve(dir / "one/lcurve.out", dir / "two/lcurve.out");
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiTaskDataParallel, ::testing::Values("all", "sample"));

// A long run that rank 1 leaves by `signal` once training is under way; the other rank must
// end with an error naming what failed, not wait for ever.
Result lose_a_rank(const TempDir& dir, const std::string& signal, double timeout_s) {
  auto input = water_input(1, 1000000);
  input["training"]["disp_freq"] = 1;
  input["training"]["parallel"]["timeout"] = timeout_s;
  write_text(dir / "input.json", input.dump());
  start_ranks(dir, 2, "train " + (dir / "input.json") + " -o " + (dir / "out"));
  const bool training = wait_for([&] { return numeric_rows(read_text(dir / "out/lcurve.out")).size() >= 3; }, 300);
  EXPECT_TRUE(training) << read_text(dir / "log.0") << read_text(dir / "log.1");
  signal_rank(dir, 1, signal);
  // Rank 0 must be done well within its collective timeout plus a step; then clean up rank 1.
  const bool rank0_ended = wait_for([&] { return ended(dir, 0); }, timeout_s + 120);
  EXPECT_TRUE(rank0_ended) << "rank 0 still runs after losing rank 1";
  run_shell("kill -9 " + read_text(dir / "pid.1"));
  return finish_ranks(dir, 2, 60);
}

// A killed rank closes its sockets: the next collective fails at once. A stopped one keeps them
// open and is caught by the collective timeout.
struct Loss {
  std::string signal;
  double timeout_s;
  std::string message;
};

class DistributedFailure : public ::testing::TestWithParam<Loss> {};

TEST_P(DistributedFailure, LosingARankEndsTheRunWithAnError) {
  TempDir dir;
  const Result r = lose_a_rank(dir, GetParam().signal, GetParam().timeout_s);
  EXPECT_NE(read_text(dir / "rc.0"), "0\n");
  EXPECT_NE(read_text(dir / "log.0").find(GetParam().message), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Signals, DistributedFailure,
                         ::testing::Values(Loss{"KILL", 60, "rank 0 of 2: all-reduce failed: another rank exited"},
                                           Loss{"STOP", 5, "did not answer within 5 s"}),
                         [](const auto& info) { return info.param.signal; });

// A rank whose partners never come: the rendezvous gives up with an error, and nothing is written.
TEST(DistributedRendezvous, MissingRanksFailIt) {
  TempDir dir;
  auto input = water_input(1, 4);
  input["training"]["parallel"]["timeout"] = 3;
  write_text(dir / "input.json", input.dump());
  const Result r = run_shell(fmt::format("RANK=0 WORLD_SIZE=2 MASTER_PORT={} {} train {} -o {}", free_port(),
                                         ATOMFORGE_BINARY, dir / "input.json", dir / "out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("rendezvous at 127.0.0.1:"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

}  // namespace
}  // namespace atomforge
