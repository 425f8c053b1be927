#include "distill/distill_input.hpp"

#include <filesystem>

#include "core/error.hpp"

namespace atomforge::distill {

using namespace config;

namespace {

std::string relative_to(const std::filesystem::path& base, const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? path : (base / p).lexically_normal().string();
}

std::vector<std::string> paths(const json& list, const std::filesystem::path& base) {
  std::vector<std::string> out;
  for (const auto& p : list) out.push_back(relative_to(base, p.get<std::string>()));
  return out;
}

Node fraction(Node node) {
  return with_check(std::move(node), [](const json& v, const std::string& path) {
    const double x = v.get<double>();
    if (!(x > 0 && x < 1)) fail("config key '{}' must be between 0 and 1 (exclusive), got {}", path, v.dump());
  });
}

}  // namespace

Node distill_input_schema() {
  const auto path_list = [](const std::string& doc) {
    return array(string("npy system folder, folder of systems, or extxyz file (relative to this file)"), doc);
  };
  return object(
      "atomforge distill input",
      {required("teacher", string("teacher model or checkpoint file (relative to this file)")),
       optional("head", string("teacher head (required when it has several)")),
       required("start", object("the frames exploration starts from",
                                {required("systems", path_list("systems whose frames start the runs")),
                                 defaulted("frames", array(integer("frame index; negative counts from the end"),
                                                           "frames of each system"),
                                           json::array({0}))})),
       required("explore",
                object("Langevin molecular dynamics with the teacher, one run per start frame and temperature",
                       {required("temperatures", array(positive(number("K")), "thermostat temperatures")),
                        required("steps", positive(integer("time steps of each run"))),
                        defaulted("timestep_fs", positive(number("time step, fs")), 0.5),
                        defaulted("every", positive(integer("take a frame every this many steps")), 10),
                        defaulted("seed", non_negative(integer("seed of velocities and noise (run k uses seed + k)")),
                                  1),
                        defaulted("tau_fs", positive(number("Langevin relaxation time 1/friction, fs")), 100.0),
                        defaulted("skin", non_negative(number("neighbour list skin, A")), 1.0)})),
       defaulted("select",
                 object("which explored frames are labelled",
                        {optional("max_force", positive(number("drop frames whose largest teacher atomic force "
                                                                "exceeds this, eV/A (unphysical excursions)"))),
                         defaulted("max_frames", non_negative(integer("at most this many frames, evenly spaced "
                                                                      "over the run (0: all)")),
                                   0),
                         defaulted("validation_fraction",
                                   fraction(number("fraction of the frames of each composition held out")), 0.2),
                         defaulted("seed", non_negative(integer("seed of the train/validation split")), 1)}),
                 json::object()),
       required("student", object("the student's training input (DeePMD-kit input.json sections); "
                                  "training_data/validation_data systems are the labelled frames",
                                  {required("model", any("model section; type_map defaults to the teacher's")),
                                   defaulted("learning_rate", any("learning_rate section"), json::object()),
                                   defaulted("loss", any("loss section"), json::object()),
                                   defaulted("training", any("training section, without data systems"),
                                             json::object())})),
       optional("original_data", path_list("labelled systems (the teacher's training data) on which report.json "
                                           "compares teacher and student")),
       defaulted("chunk", positive(integer("frames per model evaluation when labelling and testing")), 8),
       defaulted("timing_repeats", positive(integer("evaluations of one frame timed per model (median)")), 5)});
}

DistillOptions read_distill_input(const std::string& path, json* resolved_out) {
  json resolved = resolve_file(distill_input_schema(), path);
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  DistillOptions o;
  o.teacher = relative_to(base, resolved["teacher"].get<std::string>());
  if (resolved.contains("head")) o.head = resolved["head"].get<std::string>();
  o.start_systems = paths(resolved["start"]["systems"], base);
  o.start_frames = resolved["start"]["frames"].get<std::vector<int64_t>>();
  const json& e = resolved["explore"];
  o.explore.temperatures = e["temperatures"].get<std::vector<double>>();
  o.explore.steps = e["steps"].get<int64_t>();
  o.explore.timestep_fs = e["timestep_fs"].get<double>();
  o.explore.every = e["every"].get<int64_t>();
  o.explore.seed = e["seed"].get<uint64_t>();
  o.explore.tau_fs = e["tau_fs"].get<double>();
  o.explore.skin = e["skin"].get<double>();
  const json& s = resolved["select"];
  if (s.contains("max_force")) o.select.max_force = s["max_force"].get<double>();
  o.select.max_frames = s["max_frames"].get<int64_t>();
  o.select.validation_fraction = s["validation_fraction"].get<double>();
  o.select.seed = s["seed"].get<uint64_t>();
  o.student = resolved["student"];
  if (resolved.contains("original_data")) o.original_data = paths(resolved["original_data"], base);
  o.chunk = resolved["chunk"].get<int64_t>();
  o.timing_repeats = resolved["timing_repeats"].get<int64_t>();
  if (resolved_out) *resolved_out = resolved;
  return o;
}

}  // namespace atomforge::distill
