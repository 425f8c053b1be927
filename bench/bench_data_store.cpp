// The packed data store's speed and memory (bench/run_data_store.sh runs it and writes the table).
//
//   bench_data_store generate --source DIR --frames N --systems S --out DIR [--seed K]
//       S npy systems of N/S frames each: the frames of the npy system DIR repeated, every copy's
//       coordinates moved by up to +-0.02 A (labels copied), one set.000 per system.
//   bench_data_store read --store FILE.afd --reads N [--batch B] [--seed K]
//       opens the store (timed with the first frame's copy: the start-up), then copies N random
//       frames out of it in batches of B frames of one random system (systems drawn by frame
//       count), through take_frames as the trainer's prefetch thread does (checksums included).
//       Prints one JSON line: times, frames/s, MB/s and the process's memory (peak RSS, and the
//       anonymous and file-backed parts at the end: file-backed pages are the page cache's).
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "data/dataset.hpp"
#include "data/npy.hpp"
#include "data/packed_store.hpp"
#include "data/system.hpp"

namespace {

using namespace atomforge;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fields of /proc/self/status in KiB (VmHWM, VmRSS, RssAnon, RssFile).
std::map<std::string, int64_t> memory_kib() {
  std::map<std::string, int64_t> out;
  std::ifstream in("/proc/self/status");
  std::string key;
  int64_t value = 0;
  std::string line;
  while (std::getline(in, line)) {
    for (const char* k : {"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:"}) {
      if (line.rfind(k, 0) == 0) out[std::string(k, std::string(k).size() - 1)] = std::stoll(line.substr(std::string(k).size()));
    }
  }
  return out;
}

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> o;
  for (int i = 2; i + 1 < argc; i += 2) o[std::string(argv[i]).substr(2)] = argv[i + 1];
  return o;
}

void generate(const std::map<std::string, std::string>& o) {
  const data::System source = data::read_deepmd_system(o.at("source"));
  const int64_t frames = std::stoll(o.at("frames")), systems = std::stoll(o.at("systems"));
  const uint64_t seed = o.count("seed") ? std::stoull(o.at("seed")) : 1;
  const int64_t per_system = frames / systems, n3 = source.natoms() * 3;
  for (int64_t s = 0; s < systems; ++s) {
    std::vector<int64_t> which(static_cast<std::size_t>(per_system));
    for (int64_t k = 0; k < per_system; ++k) which[static_cast<std::size_t>(k)] = (s * per_system + k) % source.nframes;
    data::System copy = data::take_frames(source, which);
    for (std::size_t i = 0; i < copy.coord.size(); ++i)
      copy.coord[i] += 0.04 * (data::uniform01(seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(s * per_system * n3) + i) - 0.5);
    data::write_deepmd_system(fmt::format("{}/sys.{:04d}", o.at("out"), s), copy);
  }
}

void read(const std::map<std::string, std::string>& o) {
  const int64_t reads = std::stoll(o.at("reads"));
  const int64_t batch = o.count("batch") ? std::stoll(o.at("batch")) : 1;
  const uint64_t seed = o.count("seed") ? std::stoull(o.at("seed")) : 1;
  const auto t0 = Clock::now();
  const data::PackedStore store = data::open_packed_store(o.at("store"));
  const data::System first = data::take_frames(store.systems.front(), {0});
  const double open_s = since(t0);
  std::vector<double> cumulative;
  double total = 0;
  for (const auto& s : store.systems) cumulative.push_back(total += static_cast<double>(s.nframes));
  const auto t1 = Clock::now();
  int64_t done = 0, bytes = 0;
  for (uint64_t draw = 0; done < reads; ++draw) {
    const double u = data::uniform01(seed + 2 * draw) * total;
    const std::size_t s = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
    const data::System& system = store.systems[std::min(s, store.systems.size() - 1)];
    std::vector<int64_t> frames;
    for (int64_t k = 0; k < batch; ++k)
      frames.push_back(static_cast<int64_t>(data::splitmix64(seed + 2 * draw + 1 + 0x100000000ULL * k) %
                                            static_cast<uint64_t>(system.nframes)));
    const data::System copy = data::take_frames(system, frames);
    for (const auto& a : data::frame_arrays(copy))
      if (a.present) bytes += static_cast<int64_t>((copy.*a.values).size() * sizeof(double));
    done += batch;
  }
  const double read_s = since(t1);
  const auto mem = memory_kib();
  nlohmann::json line = {{"store", o.at("store")},
                         {"systems", store.systems.size()},
                         {"frames", store.total_frames()},
                         {"file_mb", static_cast<double>(store.file_size) / 1e6},
                         {"natoms", first.natoms()},
                         {"open_first_frame_s", open_s},
                         {"reads", done},
                         {"batch", batch},
                         {"read_s", read_s},
                         {"frames_per_s", static_cast<double>(done) / read_s},
                         {"mb_per_s", static_cast<double>(bytes) / 1e6 / read_s},
                         {"bytes_per_frame", static_cast<double>(bytes) / static_cast<double>(done)}};
  for (const auto& [k, v] : mem) line[k + "_mb"] = static_cast<double>(v) / 1024.0;
  std::cout << line.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "generate") {
      generate(parse(argc, argv));
    } else if (mode == "read") {
      read(parse(argc, argv));
    } else {
      std::cerr << "usage: bench_data_store generate|read --key value ... (see the comment at the top of the source)\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
