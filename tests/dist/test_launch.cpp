// Launcher detection from the variables mpirun, srun and torchrun set.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "dist/launch.hpp"

namespace atomforge::dist {
namespace {

Launch detect(const std::map<std::string, std::string>& variables) {
  return detect_launch([&](const char* name) -> const char* {
    const auto it = variables.find(name);
    return it == variables.end() ? nullptr : it->second.c_str();
  });
}

TEST(Launch, NoLauncherIsOneProcess) {
  const Launch launch = detect({});
  EXPECT_EQ(launch.launcher, "none");
  EXPECT_EQ(launch.world_size, 1);
  EXPECT_EQ(launch.rank, 0);
}

TEST(Launch, TorchrunVariables) {
  const Launch launch = detect({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(launch.launcher, "torchrun");
  EXPECT_EQ(launch.rank, 3);
  EXPECT_EQ(launch.world_size, 4);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_FALSE(launch.single_node);
  EXPECT_EQ(launch.master_addr, "node7");
  EXPECT_EQ(launch.master_port, 1234);
}

TEST(Launch, OpenMpiVariablesOnOneNodeUseLoopback) {
  const Launch launch = detect({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"},
                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(launch.launcher, "mpirun");
  EXPECT_EQ(launch.rank, 1);
  EXPECT_EQ(launch.world_size, 2);
  EXPECT_TRUE(launch.single_node);
  EXPECT_EQ(launch.master_addr, "127.0.0.1");
  EXPECT_EQ(launch.master_port, 29500);
}

TEST(Launch, SrunVariables) {
  const Launch launch = detect({{"SLURM_PROCID", "5"}, {"SLURM_STEP_ID", "0"}, {"SLURM_STEP_NUM_TASKS", "8"},
                                {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_NUM_NODES", "2"},
                                {"MASTER_ADDR", "10.0.0.1"}});
  EXPECT_EQ(launch.launcher, "srun");
  EXPECT_EQ(launch.rank, 5);
  EXPECT_EQ(launch.world_size, 8);  // the step's tasks, not the allocation's
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_FALSE(launch.single_node);
}

// sbatch sets SLURM_PROCID and SLURM_NTASKS for the batch script itself: not a launch.
TEST(Launch, BatchScriptWithoutSrunIsOneProcess) {
  const Launch launch = detect({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "16"}});
  EXPECT_EQ(launch.world_size, 1);
}

TEST(Launch, RendezvousFileAndInterface) {
  const Launch launch = detect({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"ATOMFORGE_RENDEZVOUS_FILE", "/shared/rdv"},
                                {"GLOO_SOCKET_IFNAME", "ib0"}});
  EXPECT_EQ(launch.rendezvous_file, "/shared/rdv");
  EXPECT_EQ(launch.interface, "ib0");
}

void expect_error(const std::map<std::string, std::string>& variables, const std::string& fragment) {
  try {
    detect(variables);
    ADD_FAILURE() << "no error; expected one mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Launch, BadVariablesNameTheVariable) {
  expect_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "rank 2 is outside a world of 2");
  expect_error({{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x'");
  expect_error({{"RANK", "0"}}, "set both RANK and WORLD_SIZE");
  expect_error({{"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK is not set");
  expect_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT");
  // Several nodes and no address for rank 0: refused rather than guessed.
  expect_error({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}},
               "set MASTER_ADDR");
}

}  // namespace
}  // namespace atomforge::dist
