#pragma once
// Helpers for tests that run the atomforge binary: temp folders, running a command, inputs.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atomforge::testing {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("atomforge_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

struct Result {
  int code = 0;
  std::string output;  // stdout and stderr
};

// Runs a shell command line, capturing stdout and stderr.
inline Result run_shell(const std::string& command_line) {
  Result r;
  const std::string command = command_line + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) r.output += buffer.data();
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

// Runs the atomforge binary with `args`.
inline Result run(const std::string& args) { return run_shell(std::string(ATOMFORGE_BINARY) + " " + args); }

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The numbers of each line of a table, skipping blank lines and '#' comments.
inline std::vector<std::vector<double>> numeric_rows(const std::string& text) {
  std::vector<std::vector<double>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::vector<double> row;
    double v;
    while (fields >> v) row.push_back(v);
    rows.push_back(std::move(row));
  }
  return rows;
}

inline std::string bundled(const std::string& relative) {
  return std::string(ATOMFORGE_SOURCE_DIR) + "/examples/data/" + relative;
}

inline bool shared_data_present() { return fs::exists(std::string(ATOMFORGE_SHARED_DATA) + "/deepmd-examples/water"); }

// A small, fast water input; callers adjust keys.
inline nlohmann::ordered_json small_water_input(const std::vector<std::string>& train,
                                                const std::vector<std::string>& valid) {
  return nlohmann::ordered_json::parse(R"({
    "model": {
      "type_map": ["O", "H"],
      "descriptor": {"type": "se_e2_a", "sel": [24, 48], "rcut": 4.0, "rcut_smth": 0.5,
                     "neuron": [4, 8, 16], "axis_neuron": 4, "seed": 1},
      "fitting_net": {"neuron": [16, 16], "seed": 2}
    },
    "learning_rate": {"start_lr": 0.005, "stop_lr": 0.0001, "decay_steps": 20},
    "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
    "training": {
      "training_data": {"systems": [], "batch_size": 1},
      "validation_data": {"systems": [], "batch_size": 1, "numb_btch": 2},
      "numb_steps": 40, "seed": 3, "disp_freq": 5, "save_freq": 20
    }})")
      .patch(nlohmann::ordered_json::array(
          {{{"op", "replace"}, {"path", "/training/training_data/systems"}, {"value", train}},
           {{"op", "replace"}, {"path", "/training/validation_data/systems"}, {"value", valid}}}));
}

}  // namespace atomforge::testing
