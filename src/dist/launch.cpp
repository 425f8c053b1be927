#include "dist/launch.hpp"

#include <cstdlib>

#include "core/error.hpp"

namespace atomforge::dist {

namespace {

int integer_variable(const Environment& env, const char* name) {
  const char* text = env(name);
  if (text == nullptr) fail("environment variable {} is not set", name);
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < 0 || value > 1 << 24)
    fail("environment variable {}='{}' is not a non-negative integer", name, text);
  return static_cast<int>(value);
}

bool has(const Environment& env, const char* name) {
  const char* value = env(name);
  return value != nullptr && *value != '\0';
}

// The first of `names` that is set, or nullptr.
const char* first_set(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (has(env, name)) return name;
  return nullptr;
}

}  // namespace

Launch detect_launch(const Environment& env) {
  Launch launch;
  bool& single_node = launch.single_node;
  if (has(env, "WORLD_SIZE") || has(env, "RANK")) {
    if (!has(env, "WORLD_SIZE") || !has(env, "RANK")) fail("torchrun-style launch: set both RANK and WORLD_SIZE");
    launch.launcher = "torchrun";
    launch.world_size = integer_variable(env, "WORLD_SIZE");
    launch.rank = integer_variable(env, "RANK");
    launch.local_rank = has(env, "LOCAL_RANK") ? integer_variable(env, "LOCAL_RANK") : launch.rank;
    if (has(env, "LOCAL_WORLD_SIZE")) single_node = integer_variable(env, "LOCAL_WORLD_SIZE") == launch.world_size;
  } else if (has(env, "OMPI_COMM_WORLD_SIZE")) {
    launch.launcher = "mpirun";
    launch.world_size = integer_variable(env, "OMPI_COMM_WORLD_SIZE");
    launch.rank = integer_variable(env, "OMPI_COMM_WORLD_RANK");
    launch.local_rank = integer_variable(env, "OMPI_COMM_WORLD_LOCAL_RANK");
    if (has(env, "OMPI_COMM_WORLD_LOCAL_SIZE"))
      single_node = integer_variable(env, "OMPI_COMM_WORLD_LOCAL_SIZE") == launch.world_size;
  } else if (has(env, "SLURM_PROCID") && has(env, "SLURM_STEP_ID")) {
    // Only srun sets the step variables: a plain run inside an allocation stays one process.
    launch.launcher = "srun";
    const char* tasks = first_set(env, {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"});
    if (tasks == nullptr) fail("srun launch: SLURM_STEP_NUM_TASKS (or SLURM_NTASKS) is not set");
    launch.world_size = integer_variable(env, tasks);
    launch.rank = integer_variable(env, "SLURM_PROCID");
    launch.local_rank = has(env, "SLURM_LOCALID") ? integer_variable(env, "SLURM_LOCALID") : 0;
    if (has(env, "SLURM_STEP_NUM_NODES")) single_node = integer_variable(env, "SLURM_STEP_NUM_NODES") == 1;
  }
  if (launch.world_size < 1) fail("{} launch: the world size is 0", launch.launcher);
  if (launch.rank >= launch.world_size)
    fail("{} launch: rank {} is outside a world of {}", launch.launcher, launch.rank, launch.world_size);

  if (has(env, "ATOMFORGE_RENDEZVOUS_FILE")) launch.rendezvous_file = env("ATOMFORGE_RENDEZVOUS_FILE");
  if (has(env, "MASTER_PORT")) {
    launch.master_port = integer_variable(env, "MASTER_PORT");
    if (launch.master_port == 0 || launch.master_port > 65535) fail("MASTER_PORT={} is not a port", launch.master_port);
  }
  if (has(env, "MASTER_ADDR")) {
    launch.master_addr = env("MASTER_ADDR");
  } else if (single_node) {
    launch.master_addr = "127.0.0.1";
  } else if (launch.rendezvous_file.empty()) {
    fail("{} launch over several nodes: set MASTER_ADDR to the host of rank 0 (and MASTER_PORT, default 29500), "
         "or ATOMFORGE_RENDEZVOUS_FILE to a file on a shared file system",
         launch.launcher);
  }
  if (has(env, "GLOO_SOCKET_IFNAME")) launch.interface = env("GLOO_SOCKET_IFNAME");
  return launch;
}

Launch detect_launch() {
  return detect_launch([](const char* name) { return std::getenv(name); });
}

}  // namespace atomforge::dist
