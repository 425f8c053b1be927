#pragma once
// Running several atomforge ranks on this machine from a test, and comparing their results.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "core/tensor_file.hpp"

namespace atomforge::testing {

// A port nobody listens on now (the kernel's pick), so parallel tests do not collide.
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Starts `ranks` processes of `PROGRAM ARGS` (atomforge by default) with torchrun-style variables, in the background:
// rank r writes its pid to pid.r, its output to log.r and, when it ends, its exit code to rc.r.
// `environment` adds variables (NAME=VALUE ...) to every rank's.
inline void start_ranks(const TempDir& dir, int ranks, const std::string& args,
                        const std::string& program = ATOMFORGE_BINARY, const std::string& environment = "") {
  const int port = free_port();
  std::string script;
  for (int r = 0; r < ranks; ++r)
    script += fmt::format(
        "(sh -c 'echo $$ > {pid}; exec env RANK={r} WORLD_SIZE={n} MASTER_PORT={port} OMP_NUM_THREADS=1 {env} {bin} "
        "{args}' "
        "> {log} 2>&1; echo $? > {rc}) > /dev/null 2>&1 & ",
        fmt::arg("pid", dir / fmt::format("pid.{}", r)), fmt::arg("r", r), fmt::arg("n", ranks),
        fmt::arg("port", port), fmt::arg("env", environment), fmt::arg("bin", program), fmt::arg("args", args),
        fmt::arg("log", dir / fmt::format("log.{}", r)), fmt::arg("rc", dir / fmt::format("rc.{}", r)));
  run_shell(script);
}

inline bool wait_for(const std::function<bool()>& condition, double seconds) {
  for (double waited = 0; waited < seconds; waited += 0.2) {
    if (condition()) return true;
    usleep(200000);
  }
  return condition();
}

inline void signal_rank(const TempDir& dir, int rank, const std::string& signal) {
  ASSERT_TRUE(wait_for([&] { return !read_text(dir / fmt::format("pid.{}", rank)).empty(); }, 30));
  run_shell("kill -" + signal + " " + read_text(dir / fmt::format("pid.{}", rank)));
}

inline bool ended(const TempDir& dir, int rank) { return !read_text(dir / fmt::format("rc.{}", rank)).empty(); }

// Waits (at most `seconds`, then kills them) for every rank; the first non-zero exit code wins.
inline Result finish_ranks(const TempDir& dir, int ranks, double seconds = 600) {
  const bool all_ended = wait_for([&] {
    for (int r = 0; r < ranks; ++r)
      if (!ended(dir, r)) return false;
    return true;
  }, seconds);
  Result result;
  for (int r = 0; r < ranks; ++r) {
    if (!ended(dir, r)) {
      run_shell("kill -9 " + read_text(dir / fmt::format("pid.{}", r)));
      wait_for([&] { return ended(dir, r); }, 30);
    }
    const std::string rc = read_text(dir / fmt::format("rc.{}", r));
    const int code = rc.empty() ? 255 : std::stoi(rc);
    if (code != 0 && result.code == 0) result.code = code;
    result.output += fmt::format("--- rank {} (exit {}):\n{}", r, code, read_text(dir / fmt::format("log.{}", r)));
  }
  if (!all_ended) result.output += "--- not every rank ended in time\n";
  return result;
}

inline Result run_ranks(const TempDir& dir, int ranks, const std::string& args,
                        const std::string& program = ATOMFORGE_BINARY, const std::string& environment = "") {
  start_ranks(dir, ranks, args, program, environment);
  return finish_ranks(dir, ranks);
}

inline std::string mpirun(int ranks) {
  return fmt::format(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
      "OMP_NUM_THREADS=1 MASTER_PORT={} timeout 300 mpirun --oversubscribe -x MASTER_PORT -np {} {}",
      free_port(), ranks, ATOMFORGE_BINARY);
}

inline bool have_mpirun() { return run_shell("command -v mpirun").code == 0; }

// Largest relative difference over every float64 array both checkpoints hold (parameters,
// buffers and Adam's moments); fails if they hold different names.
inline double max_relative_difference(const std::string& a_path, const std::string& b_path) {
  const TensorFile a = load_tensor_file(a_path), b = load_tensor_file(b_path);
  EXPECT_EQ(a.blobs.size(), b.blobs.size());
  double worst = 0;
  for (const auto& [name, blob] : a.blobs) {
    const auto it = b.blobs.find(name);
    if (it == b.blobs.end()) {
      ADD_FAILURE() << name << " missing from " << b_path;
      continue;
    }
    if (blob.dtype != DType::Float64) continue;
    EXPECT_EQ(blob.bytes.size(), it->second.bytes.size()) << name;
    const auto n = static_cast<int64_t>(std::min(blob.bytes.size(), it->second.bytes.size()) / sizeof(double));
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n; ++i) {
      double x, y;
      std::memcpy(&x, blob.bytes.data() + i * 8, 8);
      std::memcpy(&y, it->second.bytes.data() + i * 8, 8);
      scale = std::max(scale, std::abs(x));
      diff = std::max(diff, std::abs(x - y));
    }
    if (scale > 0) worst = std::max(worst, diff / scale);
  }
  return worst;
}

inline void expect_same_lcurve(const std::string& a, const std::string& b) {
  const auto rows_a = numeric_rows(read_text(a)), rows_b = numeric_rows(read_text(b));
  ASSERT_EQ(rows_a.size(), rows_b.size());
  ASSERT_GT(rows_a.size(), 2u);
  for (std::size_t i = 0; i < rows_a.size(); ++i) {
    ASSERT_EQ(rows_a[i].size(), rows_b[i].size());
    // lcurve prints three significant digits.
    for (std::size_t j = 0; j < rows_a[i].size(); ++j)
      EXPECT_NEAR(rows_a[i][j], rows_b[i][j], 6e-3 * std::abs(rows_a[i][j])) << "row " << i << " column " << j;
  }
}

// The bundled two-fidelity molecules (GFN1-xTB, GFN-FF) as two tasks, short and seeded.
inline nlohmann::ordered_json two_task_input(const std::string& mode, int gfn1_batch, int gfnff_batch) {
  auto input = multitask_example_input();
  input["training"]["multi_task_mode"] = mode;
  for (const std::string task : {"gfn1", "gfnff"}) {
    auto& data = input["training"]["data_dict"][task];
    data["training_data"]["batch_size"] = task == "gfn1" ? gfn1_batch : gfnff_batch;
    data["validation_data"]["batch_size"] = task == "gfn1" ? gfn1_batch : gfnff_batch;
  }
  input["training"]["numb_steps"] = 6;
  input["training"]["disp_freq"] = 2;
  input["training"]["save_freq"] = 3;
  return input;
}

}  // namespace atomforge::testing
