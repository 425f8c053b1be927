// Sharing ranks out to tasks for head parallelism.
#include <numeric>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "train/head_groups.hpp"

namespace atomforge::train {
namespace {

std::vector<int> sizes(const std::vector<RankRange>& groups) {
  std::vector<int> out;
  for (const auto& g : groups) out.push_back(g.size());
  return out;
}

TEST(HeadGroups, ContiguousAndCoverEveryRankOnce) {
  for (int world = 3; world <= 17; ++world) {
    const auto groups = head_groups({0.5, 0.2, 0.3}, world);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(groups.front().begin, 0);
    for (std::size_t k = 1; k < groups.size(); ++k) EXPECT_EQ(groups[k].begin, groups[k - 1].end);
    EXPECT_EQ(groups.back().end, world);
    for (const auto& g : groups) EXPECT_GE(g.size(), 1);
  }
}

TEST(HeadGroups, SizesFollowTheWeights) {
  EXPECT_EQ(sizes(head_groups({2, 1}, 3)), (std::vector<int>{2, 1}));
  EXPECT_EQ(sizes(head_groups({1, 1}, 4)), (std::vector<int>{2, 2}));
  EXPECT_EQ(sizes(head_groups({0.5, 0.2, 0.3}, 10)), (std::vector<int>{5, 2, 3}));
  // Largest remainder: 7 x (0.5, 0.25, 0.25) = 3.5, 1.75, 1.75 -> 3, 2, 2.
  EXPECT_EQ(sizes(head_groups({0.5, 0.25, 0.25}, 7)), (std::vector<int>{3, 2, 2}));
  // A tiny weight still gets its rank, taken from the most over-served task.
  EXPECT_EQ(sizes(head_groups({0.98, 0.01, 0.01}, 4)), (std::vector<int>{2, 1, 1}));
  EXPECT_EQ(sizes(head_groups({1, 1, 1}, 3)), (std::vector<int>{1, 1, 1}));
}

TEST(HeadGroups, FewerRanksThanTasksIsAnError) {
  try {
    head_groups({1, 1, 1}, 2);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 tasks, 2 ranks"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace atomforge::train
