// Multi-task head parallelism (training.parallel.heads "distributed"): one group of ranks per
// task, each rank holding the trunk and its task's head only, against one process training
// every head at every step (multi_task_mode "all") on the same frames.
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "multi_process.hpp"

namespace atomforge {
namespace {

using namespace testing;

struct Held {
  int64_t total = 0, trunk = 0, head = 0;
  std::string task;
};

// What a rank says it holds ("rank R: task 'T', N parameters (trunk M, head K)").
Held held_by(const std::string& log) {
  std::smatch m;
  const std::regex pattern(R"(rank \d+: task '(\w+)', (\d+) parameters \(trunk (\d+), head (\d+)\))");
  if (!std::regex_search(log, m, pattern)) {
    ADD_FAILURE() << "no placement line in:\n" << log;
    return {};
  }
  return {std::stoll(m[2]), std::stoll(m[3]), std::stoll(m[4]), m[1]};
}

int64_t parameters_in(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(R"(\((\d+) parameters, )"))) ADD_FAILURE() << log;
  return m.empty() ? 0 : std::stoll(m[1]);
}

// model_prob 2:1 over 3 ranks: gfn1 on ranks 0-1 (a batch of 2 each), gfnff on rank 2 (2).
nlohmann::ordered_json weighted(nlohmann::ordered_json input) {
  input["training"]["model_prob"] = {{"gfn1", 2.0}, {"gfnff", 1.0}};
  return input;
}

TEST(HeadParallel, ThreeRanksOverTwoTasksEqualOneProcessTrainingEveryHeadAndResumeInOne) {
  TempDir dir;
  auto spread = weighted(two_task_input("all", 2, 2));
  spread["training"]["parallel"]["heads"] = "distributed";
  write_text(dir / "three.json", spread.dump());
  const Result one = train(dir, weighted(two_task_input("all", 4, 2)), "one");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result three = run_ranks(dir, 3, "-v train " + (dir / "three.json") + " -o " + (dir / "three"));
  ASSERT_EQ(three.code, 0) << three.output;
  EXPECT_NE(three.output.find("gfn1 on ranks 0-1, gfnff on ranks 2-2"), std::string::npos) << three.output;

  // The gathered checkpoint is the one-process checkpoint: every head, its optimiser moments,
  // every task's data position.
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-6.pt", dir / "three/model.ckpt-6.pt"), 1e-10);
  EXPECT_EQ(load_tensor_file(dir / "three/model.ckpt-6.pt").meta.at("data_state"),
            load_tensor_file(dir / "one/model.ckpt-6.pt").meta.at("data_state"));
  expect_same_lcurve(dir / "one/lcurve.out", dir / "three/lcurve.out");

  // Each rank holds the trunk and its own head only.
  const Held r0 = held_by(read_text(dir / "log.0")), r1 = held_by(read_text(dir / "log.1")),
             r2 = held_by(read_text(dir / "log.2"));
  EXPECT_EQ(r0.task, "gfn1");
  EXPECT_EQ(r1.task, "gfn1");
  EXPECT_EQ(r2.task, "gfnff");
  EXPECT_EQ(r0.trunk, r2.trunk);
  EXPECT_EQ(r0.total, r1.total);
  EXPECT_GT(r0.head, 0);
  EXPECT_GT(r2.head, 0);
  EXPECT_EQ(r0.trunk + r0.head + r2.head, parameters_in(one.output)) << "trunk + both heads is the whole model";
  EXPECT_LT(r0.total, parameters_in(one.output));

  // The gathered checkpoint continues in one process (heads replicated) as if never split.
  const Result resumed = run("train " + (dir / "one.json") + " -o " + (dir / "three") + " --restart " +
                             (dir / "three/model.ckpt-3.pt"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_LT(max_relative_difference(dir / "one/model.ckpt-6.pt", dir / "three/model.ckpt-6.pt"), 1e-10);
}

TEST(HeadParallel, InputsThatCannotBeSplitAreRefusedAndOneProcessTrainsEveryHead) {
  TempDir dir;
  auto sample = weighted(two_task_input("sample", 2, 2));
  sample["training"]["parallel"]["heads"] = "distributed";
  write_text(dir / "sample.json", sample.dump());
  const Result r = run_ranks(dir, 2, "train " + (dir / "sample.json") + " -o " + (dir / "out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("needs a multi-task input with training.multi_task_mode 'all'"), std::string::npos)
      << r.output;

  TempDir dir2;
  auto unweighted = two_task_input("all", 2, 2);
  unweighted["training"].erase("model_prob");
  unweighted["training"]["parallel"]["heads"] = "distributed";
  write_text(dir2 / "input.json", unweighted.dump());
  const Result u = run_ranks(dir2, 2, "train " + (dir2 / "input.json") + " -o " + (dir2 / "out"));
  EXPECT_NE(u.output.find("set training.model_prob"), std::string::npos) << u.output;

  // One process (no launcher) trains the same input with every head on it.
  TempDir dir3;
  auto spread = weighted(two_task_input("all", 2, 2));
  spread["training"]["parallel"]["heads"] = "distributed";
  const Result alone = train(dir3, spread, "out");
  EXPECT_EQ(alone.code, 0) << alone.output;
  EXPECT_NE(alone.output.find("on one process: every head trains here"), std::string::npos) << alone.output;
}

}  // namespace
}  // namespace atomforge
