// Times one se_e2_a training step and the energy+force evaluation on DeePMD-kit's water example
// (192 atoms, batch 1) with the seed's network sizes (DeePMD-kit's examples/water/se_e2_a):
// sel [46, 92], rcut 6, rcut_smth 0.5, neuron [25, 50, 100], axis_neuron 16, type_one_side,
// fitting [240, 240, 240] with resnet_dt.
//
// A plain program rather than Google Benchmark, so that warm-up and the statistic (median of N
// timed runs) are explicit. Measurements, each run `--warmup` times untimed and then `--steps`
// times:
//   train   : model input + evaluate(create_graph) + loss (DeePMD-kit's default prefactors) +
//             backward + Adam step, i.e. one iteration of Trainer::run without logging; as in
//             training past the first epoch, each frame's model input is the one kept from its
//             first use (training.input_cache_mb; built, untimed, before the warm-up), unless
//             --fresh-inputs builds it every step
//   prepare : the neighbour list and model input alone (part of `train` and `infer`)
//   infer   : prepare + evaluate(create_graph=false): energy, forces and virial of one frame
// Each prints one JSON line (or a markdown row with --format markdown). Peak RSS is the process's
// getrusage ru_maxrss, which only grows: run one mode per process (--mode) for a per-mode peak;
// bench/run_se_e2_a.sh does that.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "core/allocator.hpp"
#include "core/config_schema.hpp"
#include "data/load_systems.hpp"
#include "data/system.hpp"
#include "model/block_gemm.hpp"
#include "model/device.hpp"
#include "model/energy_model.hpp"
#include "model/huge_page_allocator.hpp"
#include "model/registry.hpp"
#include "train/adam.hpp"
#include "train/backward.hpp"
#include "train/energy_loss.hpp"
#include "train/input_cache.hpp"

namespace {

using json = nlohmann::ordered_json;
using namespace atomforge;

struct Options {
  int64_t steps = 20;
  int64_t warmup = 3;
  int threads = 2;
  std::string precision = "float64";
  std::string mode = "all";  // all | train | prepare | infer
  std::string format = "json";
  std::string data = std::string(ATOMFORGE_SOURCE_DIR) + "/examples/data/water/data_0";
  std::string profile;  // when set, the timed runs of each mode are traced to PROFILE.MODE.json
  std::string model;    // a model section (input.json's "model") to time instead of the seed's se_e2_a
  int64_t op_table = 0;  // when > 0, print that many (operator, input shapes) rows by time to stderr
  int64_t block_edges = model::EnergyModel::kInferenceBlockEdges;
  int64_t recompute_edges = model::EnergyModel::kRecomputeLayerEdges;
  bool fresh_inputs = false;  // train: build every step's model input instead of keeping it
  std::string device = "cpu";
};

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: bench_se_e2_a [--steps N] [--warmup N] [--threads N] [--precision float64|float32]\n"
               "                     [--mode all|train|prepare|infer|peak] [--format json|markdown] [--data DIR]\n"
               "                     (peak: the cores' practical matrix-product rate, the faster of a 2048 x 2048\n"
               "                      product through libtorch and repeated cache-resident blocks through block_gemm;\n"
               "                      and the memory bandwidth, c = a + 1.5 b over three 64 MiB arrays)\n"
               "                     [--profile PREFIX]  (libtorch profiler trace of the timed runs, PREFIX.MODE.json;\n"
               "                                          summarise with bench/profile_summary.py)\n"
               "                     [--model FILE]      (a model section as in input.json, e.g. bench/models/*.json;\n"
               "                                          default: the seed's se_e2_a water model)\n"
               "                     [--op-table N]      (the N (operator, input shapes) pairs that took longest in the\n"
               "                                          timed runs, inclusive of nested operators, on stderr)\n"
               "                     [--fresh-inputs 1]  (train: build each step's neighbour list and model input\n"
               "                                          instead of keeping them from the first epoch)\n"
               "                     [--recompute-edges N] (inference: above N edges, message-passing layers run\n"
               "                                          again in the force pass instead of keeping activations; 0: never)\n"
               "                     [--block-edges N]   (inference: edges per block of centres; 0: all at once)\n"
               "                     [--device D]        (cpu, cuda or cuda:N: where the model runs; inputs are built\n"
               "                                          on the host and moved, as the trainer does)\n");
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(0);
    if (i + 1 >= argc) usage(2);
    const std::string v = argv[++i];
    if (a == "--steps") o.steps = std::stoll(v);
    else if (a == "--warmup") o.warmup = std::stoll(v);
    else if (a == "--threads") o.threads = std::stoi(v);
    else if (a == "--precision") o.precision = v;
    else if (a == "--mode") o.mode = v;
    else if (a == "--format") o.format = v;
    else if (a == "--data") o.data = v;
    else if (a == "--profile") o.profile = v;
    else if (a == "--model") o.model = v;
    else if (a == "--op-table") o.op_table = std::stoll(v);
    else if (a == "--block-edges") o.block_edges = std::stoll(v);
    else if (a == "--recompute-edges") o.recompute_edges = std::stoll(v);
    else if (a == "--fresh-inputs") o.fresh_inputs = v == "1";
    else if (a == "--device") o.device = v;
    else usage(2);
  }
  if (o.steps < 1 || o.warmup < 0 || o.threads < 1) usage(2);
  if (o.precision != "float64" && o.precision != "float32") usage(2);
  if (o.mode != "all" && o.mode != "train" && o.mode != "prepare" && o.mode != "infer" && o.mode != "peak") usage(2);
  if (o.format != "json" && o.format != "markdown") usage(2);
  return o;
}

// DeePMD-kit's examples/water/se_e2_a/input.json model section (seeds fixed for reproducibility).
json model_config(const std::string& precision) {
  return {{"type_map", {"O", "H"}},
          {"descriptor",
           {{"type", "se_e2_a"},
            {"sel", {46, 92}},
            {"rcut_smth", 0.5},
            {"rcut", 6.0},
            {"neuron", {25, 50, 100}},
            {"resnet_dt", false},
            {"axis_neuron", 16},
            {"type_one_side", true},
            {"precision", precision},
            {"seed", 1}}},
          {"fitting_net", {{"neuron", {240, 240, 240}}, {"resnet_dt", true}, {"precision", precision}, {"seed", 1}}}};
}

// DeePMD-kit's default 'ener' prefactors (no virial labels in this system).
json loss_config() {
  return {{"start_pref_e", 0.02}, {"limit_pref_e", 1.0}, {"start_pref_f", 1000.0},
          {"limit_pref_f", 1.0},  {"start_pref_v", 0.0}, {"limit_pref_v", 0.0}};
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// CPU time of the whole machine (busy, total) and of this process, to tell how much of the
// machine other processes used while we were timing: the numbers are contended when it is high.
struct CpuSnapshot {
  double busy = 0, total = 0, own = 0;  // seconds
};

CpuSnapshot cpu_snapshot() {
  CpuSnapshot c;
  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (int k = 0; k < 8; ++k) {  // user nice system idle iowait irq softirq steal
    double v = 0;
    stat >> v;
    c.total += v / hz;
    if (k != 3 && k != 4) c.busy += v / hz;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  c.own = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
          1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  return c;
}

struct Timing {
  std::vector<double> seconds;
  double others_cpus = 0;  // CPUs kept busy by other processes during the timed runs, on average
  double own_cpus = 0;     // CPUs this process kept busy during the timed runs, on average
  double median() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    const std::size_t n = s.size();
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
  double min() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double max() const { return *std::max_element(seconds.begin(), seconds.end()); }
  double mean() const {
    double sum = 0;
    for (double x : seconds) sum += x;
    return sum / static_cast<double>(seconds.size());
  }
};

// Operators of the timed runs with their input shapes, longest own time first (inclusive time
// minus that of the operators they call; the inclusive time beside it): which tensor sizes an
// optimisation should target.
void print_op_table(const torch::autograd::profiler::thread_event_lists& threads, int64_t rows) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  struct Row {
    double self_ms = 0, total_ms = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Row> table;
  for (const auto& events : threads) {
    std::vector<std::pair<const LegacyEvent*, double>> open;  // event, its children's time (ms)
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        open.push_back({&e, 0.0});
      } else if (e.kind() == EventKind::PopRange && !open.empty()) {
        const auto [begin, children_ms] = open.back();
        open.pop_back();
        const double ms = begin->cpuElapsedUs(e) / 1e3;
        if (!open.empty()) open.back().second += ms;
        std::string key = begin->name();
        for (const auto& shape : begin->shapes()) key += fmt::format(" [{}]", fmt::join(shape, ","));
        Row& row = table[key];
        row.self_ms += ms - children_ms;
        row.total_ms += ms;
        row.calls += 1;
      }
    }
  }
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [key, row] : table)
    sorted.push_back({row.self_ms, fmt::format("{:9.1f} ms self {:9.1f} ms total  {} x{}", row.self_ms, row.total_ms,
                                               key, row.calls)});
  std::sort(sorted.rbegin(), sorted.rend());
  for (std::size_t k = 0; k < std::min<std::size_t>(static_cast<std::size_t>(rows), sorted.size()); ++k)
    std::cerr << sorted[k].second << "\n";
}

// Runs `body(i)` warmup times untimed, then steps times timed; i counts all calls. With
// --profile the timed runs are also traced (the profiler's overhead is in their times then).
Timing measure(const Options& o, const std::string& name, const std::function<void(int64_t)>& body) {
  int64_t i = 0;
  for (int64_t k = 0; k < o.warmup; ++k) body(i++);
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (!o.profile.empty())
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(o.profile + "." + name + ".json");
  namespace prof = torch::autograd::profiler;
  if (o.op_table > 0)
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                                     /*report_input_shapes=*/true));
  Timing t;
  const CpuSnapshot before = cpu_snapshot();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < o.steps; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    body(i++);
    t.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const CpuSnapshot after = cpu_snapshot();
  if (o.op_table > 0) print_op_table(prof::disableProfilerLegacy(), o.op_table);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double ncpu = (after.total - before.total) / std::max(wall, 1e-9);  // online CPUs
  const double own = after.own - before.own;
  t.own_cpus = own / std::max(wall, 1e-9);
  t.others_cpus = std::max(0.0, (after.busy - before.busy - own) / std::max(wall, 1e-9));
  t.others_cpus = std::min(t.others_cpus, std::max(0.0, ncpu - t.own_cpus));  // jiffy rounding
  return t;
}

// Multiply-adds of one forward evaluation of the seed's se_e2_a model: embedding nets on the
// real neighbours, the contraction T = R^T G, D = T^T T<, and the fitting nets; what the model
// must compute, not what an implementation spends (padding, copies).
double seed_forward_macs(int64_t natoms, int64_t real_neighbours) {
  const json m = model_config("float64");
  const auto neuron = m["descriptor"]["neuron"].get<std::vector<int64_t>>();
  const auto fitting = m["fitting_net"]["neuron"].get<std::vector<int64_t>>();
  const int64_t m1 = neuron.back(), m2 = m["descriptor"]["axis_neuron"].get<int64_t>();
  double per_neighbour = 0, per_atom = 0;
  int64_t in = 1;
  for (int64_t width : neuron) per_neighbour += static_cast<double>(in * width), in = width;
  per_neighbour += 4.0 * static_cast<double>(m1);
  per_atom += 4.0 * static_cast<double>(m1 * m2);
  in = m1 * m2;
  for (int64_t width : fitting) per_atom += static_cast<double>(in * width), in = width;
  per_atom += static_cast<double>(in);
  return per_neighbour * static_cast<double>(real_neighbours) + per_atom * static_cast<double>(natoms);
}

void report(const Options& o, const std::string& name, const Timing& t, double rss_before_mb, int64_t natoms,
            int64_t edges, int64_t parameters, double forward_macs = 0) {
  const double median = t.median();
  if (o.format == "markdown") {
    std::cout << fmt::format("| {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.2f} | {:.0f} |\n", name, o.precision,
                             o.threads, median, t.min(), t.max(), 1.0 / median, peak_rss_mb());
    return;
  }
  json j = {{"bench", name},
            {"model", o.model.empty() ? std::string("seed se_e2_a") : o.model},
            {"data", o.data},
            {"precision", o.precision},
            {"device", o.device},
            {"threads", o.threads},
            {"torch_threads", at::get_num_threads()},
            {"natoms", natoms},
            {"edges", edges},
            {"parameters", parameters},
            {"warmup", o.warmup},
            {"steps", o.steps},
            {"median_s", median},
            {"min_s", t.min()},
            {"max_s", t.max()},
            {"mean_s", t.mean()},
            {"per_s", 1.0 / median},
            {"rss_before_mb", rss_before_mb},
            {"peak_rss_mb", peak_rss_mb()},
            {"own_cpus", t.own_cpus},
            {"others_cpus", t.others_cpus},
            {"torch_version", TORCH_VERSION}};
  if (forward_macs > 0) j["forward_macs"] = forward_macs;
  std::cout << j.dump() << std::endl;
}

// The cores' practical peak, two ways; the bound takes the faster. A 2048 x 2048 product
// through libtorch's mm (OpenBLAS, its own threads):
template <typename T>
double large_product_gflops(const Options& o) {
  constexpr int64_t n = 2048;
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
  at::Tensor c = at::empty({n, n}, options);
  const Timing t = measure(o, "peak", [&](int64_t) { at::mm_out(c, a, b); });
  return 2.0 * n * n * n / t.median() / 1e9;
}

// and the kernel the fused paths use (block_gemm: LIBXSMM where built with it) on a
// cache-resident (128 x 240)(240 x 240) product, one per thread, repeated: the fastest case of
// the fitting net's shapes.
template <typename T>
double block_product_gflops(const Options& o) {
  constexpr int64_t m = 128, k = 240, n = 240, repeats = 200;
  const int64_t threads = at::get_num_threads();
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const at::Tensor a = at::randn({threads, m, k}, options), b = at::randn({threads, k, n}, options);
  at::Tensor c = at::zeros({threads, m, n}, options);
  const Timing t = measure(o, "peak", [&](int64_t) {
    at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        for (int64_t r = 0; r < repeats; ++r)
          atomforge::model::block_gemm<T>(false, false, m, n, k, a[p].data_ptr<T>(), k, b[p].data_ptr<T>(), n, T(1),
                                          c[p].data_ptr<T>(), n);
    });
  });
  return 2.0 * m * n * k * repeats * threads / t.median() / 1e9;
}

// Memory bandwidth: c = a + 1.5 b over three 64 MiB arrays (twice the largest L3 cache seen
// here), split over the threads; the bytes read and written, 24 per element. The training step's
// element-wise passes over the embedding's (neighbours, 100) arrays run at this rate when they
// miss the caches, however many threads share it.
double memory_gbytes_per_s(const Options& o) {
  constexpr int64_t n = int64_t{8} << 20;
  const at::Tensor a = at::rand({n}, at::kDouble), b = at::rand({n}, at::kDouble);
  at::Tensor c = at::zeros({n}, at::kDouble);
  const double* ap = a.data_ptr<double>();
  const double* bp = b.data_ptr<double>();
  double* cp = c.data_ptr<double>();
  const Timing t = measure(o, "peak", [&](int64_t) {
    at::parallel_for(0, n, n / at::get_num_threads(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) cp[i] = ap[i] + 1.5 * bp[i];
    });
  });
  return 24.0 * n / t.median() / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  atomforge::keep_freed_memory_for_reuse();  // as the atomforge command does
  model::map_large_tensors_on_huge_pages();
  const Options o = parse(argc, argv);
  at::set_num_threads(o.threads);
  at::manual_seed(0);
  if (o.mode == "peak") {
    const bool single = o.precision == "float32";
    const double large = single ? large_product_gflops<float>(o) : large_product_gflops<double>(o);
    const double blocks = single ? block_product_gflops<float>(o) : block_product_gflops<double>(o);
    std::cout << json({{"bench", "peak"}, {"precision", o.precision}, {"threads", o.threads},
                       {"gflops", std::max(large, blocks)}, {"gflops_large_mm", large}, {"gflops_block_gemm", blocks},
                       {"block_gemm_backend", atomforge::model::block_gemm_backend_name()},
                       {"memory_gbytes_per_s", memory_gbytes_per_s(o)}})
                     .dump()
              << std::endl;
    return 0;
  }

  const std::vector<data::System> systems = data::load_systems(o.data);
  if (systems.size() != 1) {
    std::cerr << o.data << ": expected one system, found " << systems.size() << "\n";
    return 2;
  }
  const data::System& system = systems.front();
  const int64_t nframes = system.nframes;
  json section = model_config(o.precision);
  if (!o.model.empty()) {
    std::ifstream in(o.model);
    if (!in) {
      std::cerr << "cannot read " << o.model << "\n";
      return 2;
    }
    section = json::parse(in);
    section["descriptor"]["precision"] = o.precision;
    section["fitting_net"]["precision"] = o.precision;
  }
  model::EnergyModel model(model::EnergyModel::single_task_config(config::resolve(model::model_schema(), section)), 1);
  model.compute_statistics({system}, {1});
  model.fit_out_bias({system});
  model.set_inference_block_edges(o.block_edges);
  model.set_recompute_layer_edges(o.recompute_edges);
  model.to(model::resolve_device(o.device, "--device"));

  const double lr = 1e-3;  // DeePMD-kit's default start_lr; a constant rate costs the same
  const train::EnergyLoss loss(loss_config(), lr);
  train::Adam adam(model.parameters());

  // Frames cycle through the system, one per step, as batch_size 1 training does.
  const auto frame = [&](int64_t i) { return std::vector<int64_t>{i % nframes}; };
  const model::ModelInput probe = model.prepare(system, {0});
  const int64_t edges = probe.edge_vec.size(0);
  const double forward_macs =
      o.model.empty() ? seed_forward_macs(system.natoms(), (probe.slot_index < edges).sum().item<int64_t>()) : 0.0;
  if (probe.truncated_centres > 0)
    std::cerr << fmt::format("note: {} centres have more neighbours than sel allows\n", probe.truncated_centres);

  if (o.format == "markdown")
    std::cout << "| measurement | precision | threads | median s | min s | max s | per s | peak RSS MB |\n"
                 "|---|---|---|---|---|---|---|---|\n";

  // Order matters for peak RSS in --mode all: the cheapest first.
  if (o.mode == "all" || o.mode == "prepare") {
    const double rss = current_rss_mb();
    const Timing t = measure(o, "prepare", [&](int64_t i) {
      const model::ModelInput input = model.prepare(system, frame(i));
      (void)input;
    });
    report(o, "prepare", t, rss, system.natoms(), edges, model.parameters().parameter_count());
  }
  if (o.mode == "all" || o.mode == "infer") {
    const double rss = current_rss_mb();
    const Timing t = measure(o, "infer", [&](int64_t i) {
      const model::Prediction p = model.evaluate(model.prepare(system, frame(i)), false);
      (void)p.force.data_ptr();
    });
    report(o, "infer", t, rss, system.natoms(), edges, model.parameters().parameter_count(), forward_macs);
  }
  if (o.mode == "all" || o.mode == "train") {
    const double rss = current_rss_mb();
    // The batches the trainer's prefetcher would hand over, and the inputs kept from the first epoch.
    std::vector<data::LoadedBatch> batches(static_cast<std::size_t>(nframes));
    for (int64_t f = 0; f < nframes; ++f) batches[f] = {data::Batch{0, {f}}, data::take_frames(system, {f})};
    train::InputCache inputs(o.fresh_inputs ? 0 : int64_t{1} << 40);
    for (const auto& batch : batches) (void)inputs.get(model, 0, batch);
    const Timing t = measure(o, "train", [&](int64_t i) {
      const auto frames = frame(i);
      const model::Prediction prediction = model.evaluate(inputs.get(model, 0, batches[frames[0]]), true);
      const train::LossValue value =
          loss(prediction, train::make_labels(system, frames, model.dtype()), system.natoms(), lr);
      train::backward_to_parameters(value.loss, model.parameters());
      adam.step(lr);
    });
    report(o, "train", t, rss, system.natoms(), edges, model.parameters().parameter_count(), forward_macs);
  }
  return 0;
}
