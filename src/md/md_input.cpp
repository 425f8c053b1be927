#include "md/md_input.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "model/device.hpp"

namespace atomforge::md {

using namespace config;

namespace {

Node thermostat_fields(const std::string& doc, bool chain) {
  std::vector<Field> fields = {
      required("temperature", positive(number("target temperature, K"))),
      defaulted("tau_fs", positive(number("relaxation time of the thermostat, fs")), 100.0)};
  if (chain) fields.push_back(defaulted("chain", positive(integer("thermostats in the chain (1: plain Nose-Hoover)")), 3));
  return object(doc, fields);
}

std::string relative_to(const std::filesystem::path& base, const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? path : (base / p).lexically_normal().string();
}

}  // namespace

Node md_input_schema() {
  return object(
      "atomforge md input",
      {required("model", string("model or checkpoint file (relative to the input file)")),
       optional("head", string("head of a multi-head model (required when it has several)")),
       defaulted("device", string("where the model runs: cpu, cuda or cuda:N (the neighbour list and the "
                                  "integration stay on the host)"),
                 "cpu"),
       required("start", object("the first frame",
                                {required("file", string("extxyz file (may have a velocities:R:3 column, A/fs) or "
                                                         "DeePMD npy system folder, relative to the input file")),
                                 defaulted("frame", integer("frame index over the whole file; negative counts from "
                                                            "the end"),
                                           0)})),
       defaulted("ensemble",
                 tagged("thermodynamic ensemble", "type",
                        {{"nve", object("velocity Verlet, constant energy", {})},
                         {"langevin", thermostat_fields("NVT by Langevin dynamics (BAOAB); tau_fs = 1/friction", false)},
                         {"nose-hoover", thermostat_fields("NVT by a Nose-Hoover chain; tau_fs = thermostat period",
                                                           true)}},
                        "nve"),
                 json::object()),
       optional("initial_temperature",
                non_negative(number("K: Maxwell-Boltzmann velocities (seeded, zero total momentum, scaled to exactly "
                                    "this temperature). Absent: the start frame's velocities if it has them, else "
                                    "the thermostat temperature, else atoms at rest"))),
       defaulted("timestep_fs", positive(number("time step, fs")), 0.5),
       required("steps", non_negative(integer("number of time steps"))),
       defaulted("seed", non_negative(integer("seed of the initial velocities and the Langevin noise")), 1),
       defaulted("skin", non_negative(number("neighbour list skin, A: pairs within rcut + skin are kept until an "
                                             "atom moves skin/2 (0: a new list every step)")),
                 1.0),
       defaulted("thermo_every", positive(integer("write a thermo.out line every this many steps")), 10),
       defaulted("trajectory",
                 object("extxyz trajectory (unwrapped positions, forces, velocities, energy)",
                        {defaulted("file", string("file name in the output folder"), "traj.extxyz"),
                         defaulted("every", non_negative(integer("write a frame every this many steps (0: never)")), 100)}),
                 json::object()),
       optional("rdf", object("radial distribution functions, written to rdf.out (needs a periodic cell)",
                              {defaulted("every", positive(integer("sample every this many steps")), 10),
                               defaulted("start", non_negative(integer("first step sampled (equilibration)")), 0),
                               defaulted("rmax", positive(number("largest distance, A")), 6.0),
                               defaulted("nbins", positive(integer("number of bins")), 200)})),
       optional("msd", object("mean squared displacement and diffusion coefficients, written to msd.out",
                              {defaulted("every", positive(integer("sample every this many steps")), 10),
                               defaulted("start", non_negative(integer("first step sampled (time origin)")), 0)}))});
}

MdOptions read_md_input(const std::string& path, json* resolved_out) {
  json resolved = resolve_file(md_input_schema(), path);
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  MdOptions o;
  o.model = relative_to(base, resolved["model"].get<std::string>());
  if (resolved.contains("head")) o.head = resolved["head"].get<std::string>();
  o.device = resolved["device"].get<std::string>();
  (void)model::resolve_device(o.device, path + ": device");  // a device this machine lacks fails here, named
  o.start_file = relative_to(base, resolved["start"]["file"].get<std::string>());
  o.start_frame = resolved["start"]["frame"].get<int64_t>();
  const json& ensemble = resolved["ensemble"];
  o.ensemble = ensemble["type"].get<std::string>();
  if (o.ensemble != "nve") {
    o.temperature = ensemble["temperature"].get<double>();
    o.tau_fs = ensemble["tau_fs"].get<double>();
  }
  if (o.ensemble == "nose-hoover") o.chain = ensemble["chain"].get<int>();
  if (resolved.contains("initial_temperature")) o.initial_temperature = resolved["initial_temperature"].get<double>();
  o.timestep_fs = resolved["timestep_fs"].get<double>();
  o.steps = resolved["steps"].get<int64_t>();
  o.seed = resolved["seed"].get<uint64_t>();
  o.skin = resolved["skin"].get<double>();
  o.thermo_every = resolved["thermo_every"].get<int64_t>();
  o.trajectory_file = resolved["trajectory"]["file"].get<std::string>();
  o.trajectory_every = resolved["trajectory"]["every"].get<int64_t>();
  if (resolved.contains("rdf")) {
    o.rdf_every = resolved["rdf"]["every"].get<int64_t>();
    o.rdf_start = resolved["rdf"]["start"].get<int64_t>();
    o.rdf_rmax = resolved["rdf"]["rmax"].get<double>();
    o.rdf_nbins = resolved["rdf"]["nbins"].get<int64_t>();
  }
  if (resolved.contains("msd")) {
    o.msd_every = resolved["msd"]["every"].get<int64_t>();
    o.msd_start = resolved["msd"]["start"].get<int64_t>();
  }
  if (resolved_out) *resolved_out = resolved;
  return o;
}

}  // namespace atomforge::md
