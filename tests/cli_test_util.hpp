#pragma once
// Helpers for tests that run the atomforge binary: temp folders, running a command, training
// and freezing models, reading its outputs. Inputs: inputs_test_util.hpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inputs_test_util.hpp"
#include "temp_dir_test_util.hpp"

namespace atomforge::testing {

namespace fs = std::filesystem;

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

inline bool shared_data_present() { return fs::exists(std::string(ATOMFORGE_SHARED_DATA) + "/deepmd-examples/water"); }

// Writes `input` to DIR/NAME.json and trains it into DIR/NAME; `extra`: more arguments.
inline Result train(const TempDir& dir, const nlohmann::ordered_json& input, const std::string& name,
                    const std::string& extra = "") {
  write_text(dir / (name + ".json"), input.dump());
  return run("train " + (dir / (name + ".json")) + " -o " + (dir / name) + extra);
}

// The checkpoint of `input` trained into DIR/NAME, or "" (with a test failure) when training failed.
inline std::string trained_checkpoint(const TempDir& dir, const nlohmann::ordered_json& input,
                                      const std::string& name) {
  const Result r = train(dir, input, name);
  EXPECT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = dir / (name + "/model.ckpt.pt");
  EXPECT_TRUE(fs::exists(checkpoint)) << r.output;
  return r.code == 0 && fs::exists(checkpoint) ? checkpoint : "";
}

// `input` trained into DIR/NAME and frozen to DIR/NAME.pth: its path, or "" (with a test
// failure) when training or freezing failed.
inline std::string frozen_model(const TempDir& dir, const nlohmann::ordered_json& input, const std::string& name) {
  const std::string checkpoint = trained_checkpoint(dir, input, name);
  if (checkpoint.empty()) return "";
  const std::string path = dir / (name + ".pth");
  const Result r = run("freeze " + checkpoint + " -o " + path);
  EXPECT_EQ(r.code, 0) << r.output;
  return r.code == 0 && fs::exists(path) ? path : "";
}

// The model of `input`, trained (and frozen with `frozen`) once for all the test processes of a
// build: ctest runs every test in a process of its own. Kept in the build tree under a name made
// of the input and the atomforge binary (its size and time), so that a rebuilt binary trains
// again; moved in with one rename, so that a test running at the same time finds the whole file
// or none. "" (with a test failure) when training or freezing failed.
inline std::string cached_model(const nlohmann::ordered_json& input, bool frozen) {
  const fs::path binary(ATOMFORGE_BINARY);
  const std::string stamp = std::to_string(fs::file_size(binary)) + "_" +
                            std::to_string(fs::last_write_time(binary).time_since_epoch().count());
  const fs::path folder = fs::path(ATOMFORGE_TEST_MODEL_CACHE) / stamp;
  const fs::path path =
      folder / (std::to_string(std::hash<std::string>{}(input.dump())) + (frozen ? ".pth" : ".ckpt.pt"));
  if (fs::exists(path)) return path.string();
  if (!fs::exists(folder)) {  // a new binary: the models of earlier ones are of no more use
    std::error_code ec;
    for (const auto& old : fs::directory_iterator(ATOMFORGE_TEST_MODEL_CACHE, ec))
      if (old.path() != folder) fs::remove_all(old.path(), ec);
  }
  fs::create_directories(folder);
  const TempDir dir(folder);
  const std::string trained = frozen ? frozen_model(dir, input, "model") : trained_checkpoint(dir, input, "model");
  if (trained.empty()) return "";
  fs::rename(fs::canonical(trained), path);  // the checkpoint is a link to its step's file
  return path.string();
}

// `input` trained into DIR/full, and again into DIR/resumed from its checkpoint at `step` as
// after an interruption (that checkpoint, and an lcurve that ran on past it): the resumed run
// writes exactly the lcurve, and ends with exactly the checkpoint at step `last`, of the
// uninterrupted one.
inline void expect_resumed_run_is_bit_for_bit(const TempDir& dir, const nlohmann::ordered_json& input, int64_t step,
                                              int64_t last) {
  const Result full = train(dir, input, "full");
  ASSERT_EQ(full.code, 0) << full.output;
  const auto checkpoint = [](int64_t at) { return "model.ckpt-" + std::to_string(at) + ".pt"; };
  fs::create_directories(dir.path / "resumed");
  fs::copy_file(dir / ("full/" + checkpoint(step)), dir / ("resumed/" + checkpoint(step)));
  fs::copy_file(dir / "full/lcurve.out", dir / "resumed/lcurve.out");
  const Result resumed = train(dir, input, "resumed", " --restart " + (dir / ("resumed/" + checkpoint(step))));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(read_text(dir / "resumed/lcurve.out"), read_text(dir / "full/lcurve.out"));
  EXPECT_EQ(read_text(dir / ("resumed/" + checkpoint(last))), read_text(dir / ("full/" + checkpoint(last))));
}

// lcurve.out: the column names after "step" and a row per displayed step.
struct LcurveRow {
  int64_t step;
  std::vector<double> values;  // in the order of the column names
};

inline std::vector<LcurveRow> read_lcurve(const std::string& path, std::vector<std::string>* columns = nullptr) {
  std::istringstream in(read_text(path));
  std::string line;
  std::vector<LcurveRow> rows;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    if (line.rfind("#", 0) == 0) {
      std::string name;
      fields >> name >> name;  // "#", "step"
      if (columns)
        while (fields >> name) columns->push_back(name);
      continue;
    }
    LcurveRow row;
    fields >> row.step;
    double v;
    while (fields >> v) row.values.push_back(v);
    rows.push_back(row);
  }
  return rows;
}

// Column `name` of lcurve.out at its last row (or first with `first`).
inline double lcurve_value(const std::string& path, const std::string& name, bool first = false) {
  std::vector<std::string> columns;
  const auto rows = read_lcurve(path, &columns);
  const auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end() || rows.empty()) {
    ADD_FAILURE() << "no column " << name << " (or no row) in " << path;
    return NAN;
  }
  return (first ? rows.front() : rows.back()).values.at(static_cast<std::size_t>(it - columns.begin()));
}

// The predictions (the second half of each row) of an `atomforge test -d` detail file whose
// values have `width` components (.e.out 1, .f.out 3, .v.out 9).
inline std::vector<double> predicted_columns(const std::string& path, int width) {
  std::vector<double> out;
  for (const std::vector<double>& row : numeric_rows(read_text(path))) {
    EXPECT_EQ(row.size(), static_cast<std::size_t>(2 * width)) << path;
    for (int c = 0; c < width && width + c < static_cast<int>(row.size()); ++c) out.push_back(row[width + c]);
  }
  return out;
}

}  // namespace atomforge::testing
