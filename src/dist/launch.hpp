#pragma once
// Who launched us and where the ranks meet. Read from the variables the launchers set:
// torchrun-style (RANK, WORLD_SIZE, LOCAL_RANK), Open MPI's mpirun (OMPI_COMM_WORLD_*) and
// Slurm's srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS or SLURM_NTASKS, SLURM_LOCALID). No launcher
// means one process. torch-free, so it is tested without starting anything.
#include <functional>
#include <string>

namespace atomforge::dist {

struct Launch {
  std::string launcher = "none";  // none, torchrun, mpirun, srun
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  bool single_node = true;  // all ranks on this host: loopback is enough
  // Rendezvous: a file every rank can see (ATOMFORGE_RENDEZVOUS_FILE), else a TCP store that
  // rank 0 hosts at master_addr:master_port.
  std::string rendezvous_file;
  std::string master_addr;
  int master_port = 29500;
  // A socket interface for the collectives (GLOO_SOCKET_IFNAME); empty picks one.
  std::string interface;
};

using Environment = std::function<const char*(const char* name)>;

// Errors name the variable at fault: a rank outside [0, world), a non-number, a job spread
// over several nodes without MASTER_ADDR (the address of rank 0 cannot be guessed safely).
Launch detect_launch(const Environment& environment);
Launch detect_launch();  // from the process environment

}  // namespace atomforge::dist
