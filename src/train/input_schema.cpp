#include "train/input_schema.hpp"

#include <algorithm>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "model/energy_model.hpp"
#include "model/registry.hpp"

namespace atomforge::train {

using namespace config;

config::Node data_schema(bool validation) {
  return object(
      validation ? "validation data" : "training data",
      {required("systems", one_of({string("folder searched recursively for systems, or an extxyz file"),
                                   array(string("system folder or extxyz file"), "systems")},
                                  "a folder, extxyz file, or a list of them (relative to input.json)")),
       defaulted("batch_size",
                 one_of({integer("frames per batch"), string("\"auto\" or \"auto:N\""),
                         array(integer("frames per batch"), "one per system")},
                        "frames per batch: integer, list, \"auto\" (>= 32 atoms) or \"auto:N\""),
                 validation ? json(1) : json("auto")),
       defaulted("auto_prob", string("system sampling: prob_uniform, prob_sys_size or prob_sys_size;a:b:w;..."),
                 "prob_sys_size", {"auto_prob_style"}),
       optional("sys_probs", array(non_negative(number("probability")), "explicit system probabilities"),
                {"sys_weights"}),
       defaulted("set_prefix", string("prefix of the set folders", {"set"}), "set"),
       defaulted("numb_btch", positive(integer("validation batches per display")), 1, {"numb_batch"})});
}

namespace {

Node learning_rate_schema() {
  return tagged("learning rate schedule", "type",
                {{"exp", object("lr(t) = max(start_lr * r^floor(t/decay_steps), stop_lr)",
                                {defaulted("start_lr", positive(number("learning rate at step 0")), 1e-3),
                                 defaulted("stop_lr", positive(number("learning rate at the last step")), 1e-8),
                                 defaulted("decay_steps", positive(integer("steps between decays")), 5000),
                                 optional("decay_rate", positive(number("decay factor r; from stop_lr when absent"))),
                                 defaulted("scale_by_worker", string("lr scaling with ranks", {"linear", "sqrt", "none"}),
                                           "linear")})}},
                "exp");
}

Node loss_schema() {
  return tagged(
      "loss", "type",
      {{"ener", object("energy, force and virial mean squared errors with prefactors moving with the lr",
                       {defaulted("start_pref_e", non_negative(number("energy prefactor at the start")), 0.02),
                        defaulted("limit_pref_e", non_negative(number("energy prefactor at the end")), 1.0),
                        defaulted("start_pref_f", non_negative(number("force prefactor at the start")), 1000.0),
                        defaulted("limit_pref_f", non_negative(number("force prefactor at the end")), 1.0),
                        defaulted("start_pref_v", non_negative(number("virial prefactor at the start")), 0.0),
                        defaulted("limit_pref_v", non_negative(number("virial prefactor at the end")), 0.0)})}},
      "ener");
}

// The loop's keys, the same in both layouts; the data keys differ and are added by the caller.
std::vector<Field> training_loop_fields() {
  return {required("numb_steps", positive(integer("number of training steps")), {"stop_batch"}),
          optional("seed", integer("random seed of data sampling and (by default) of the model")),
          defaulted("disp_file", string("learning curve file"), "lcurve.out"),
          defaulted("disp_freq", positive(integer("steps between learning-curve rows")), 1000),
          defaulted("save_freq", positive(integer("steps between checkpoints")), 1000),
          defaulted("save_ckpt", string("checkpoint name prefix"), "model.ckpt"),
          defaulted("max_ckpt_keep", positive(integer("checkpoints kept")), 5),
          defaulted("disp_training", boolean("print progress"), true),
          defaulted("time_training", boolean("print timing"), true),
          defaulted("num_threads", non_negative(integer("intra-op threads; 0 keeps the environment's setting")), 0),
          defaulted("device",
                    string("where the model trains: cpu, cuda (each rank's GPU: rank modulo the visible ones) or "
                           "cuda:N; neighbour lists, statistics and checkpoints stay on the host (docs/gpu.md)"),
                    "cpu"),
          defaulted("input_cache_mb",
                    non_negative(number("MiB per rank of frames' neighbour lists and model inputs kept, so that a "
                                        "frame drawn again in a later epoch reuses them; frames beyond it are built "
                                        "every time they are drawn; 0 builds every batch afresh")),
                    1024.0),
          defaulted("parallel",
                    object("several processes (launched by mpirun, srun or torchrun-style variables; see "
                           "docs/distributed.md): each rank trains on its share of every batch, batch_size is per rank",
                           {defaulted("timeout",
                                      positive(number("seconds the rendezvous or a collective waits for the other "
                                                      "ranks before the run stops with an error")),
                                      300.0),
                            defaulted("bucket_mb", positive(number("gradient all-reduce bucket size, MiB")), 25.0),
                            defaulted("heads",
                                      string("multi-task: 'replicated' (every rank holds every head and trains on "
                                             "its share of each batch) or 'distributed' (HydraGNN: one group of "
                                             "ranks per task, sized by model_prob, each holding the trunk and its "
                                             "task's head; needs multi_task_mode 'all')",
                                             {"replicated", "distributed"}),
                                      "replicated"),
                            defaulted("graph",
                                      positive(integer("graph parallelism (painn, dimenet): consecutive ranks that "
                                                       "share each batch's graph, each computing its share of the "
                                                       "edges (painn) or triplets (dimenet); the ranks form "
                                                       "(ranks / graph) data-parallel shares x graph")),
                                      1)}),
                    json::object()),
          defaulted("tensorboard", boolean("accepted for DeePMD-kit compatibility; ignored"), false),
          optional("tensorboard_log_dir", string("accepted for DeePMD-kit compatibility; ignored")),
          optional("tensorboard_freq", integer("accepted for DeePMD-kit compatibility; ignored")),
          defaulted("profiling", boolean("accepted for DeePMD-kit compatibility; ignored"), false),
          optional("profiling_file", string("accepted for DeePMD-kit compatibility; ignored"))};
}

// "key" or "key:shared_level" naming a shared_dict entry; anything else is an inline value.
struct Reference {
  std::string key;  // empty for inline values
  json value;
};

Reference follow(const json& value, const json& shared, const std::string& path) {
  if (!value.is_string()) return {"", value};
  std::string key = value.get<std::string>();
  const auto colon = key.find(':');
  if (colon != std::string::npos) {
    const std::string level = key.substr(colon + 1);
    key = key.substr(0, colon);
    if (level != "0")
      fail("config key '{}': shared_level '{}' is not supported (only 0: share every parameter)", path, level);
  }
  if (!shared.contains(key)) {
    std::string keys;
    for (auto it = shared.begin(); it != shared.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
    fail("config key '{}' refers to '{}', which is not in model.shared_dict (keys: {})", path, key, keys);
  }
  return {key, shared.at(key)};
}

void check_task_keys(const json& dict, const std::vector<std::string>& tasks, const std::string& path,
                     bool all_required) {
  for (auto it = dict.begin(); it != dict.end(); ++it)
    if (std::find(tasks.begin(), tasks.end(), it.key()) == tasks.end())
      fail("config key '{}.{}': no task '{}' in model.model_dict", path, it.key(), it.key());
  if (all_required)
    for (const auto& task : tasks)
      if (!dict.contains(task)) fail("config key '{}' has no entry for task '{}'", path, task);
}

TrainingInput parse_multi_task(const json& raw) {
  TrainingInput in;
  in.multi_task = true;
  in.resolved = resolve(multi_task_schema(), raw);
  const json& shared = in.resolved.at("model").at("shared_dict");
  const json& model_dict = in.resolved.at("model").at("model_dict");
  std::vector<std::string> tasks;
  for (auto it = model_dict.begin(); it != model_dict.end(); ++it) tasks.push_back(it.key());
  if (tasks.empty()) fail("config key 'model.model_dict' defines no task");
  check_task_keys(in.resolved.at("loss_dict"), tasks, "loss_dict", true);
  const json& training = in.resolved.at("training");
  check_task_keys(training.at("data_dict"), tasks, "training.data_dict", true);
  if (training.contains("model_prob")) check_task_keys(training.at("model_prob"), tasks, "training.model_prob", true);
  in.mode = training.at("multi_task_mode").get<std::string>();

  json canonical;
  std::string descriptor_key;
  std::map<std::string, std::vector<std::string>> sharers;  // shared fitting key -> tasks, in order
  json fittings = json::object(), heads = json::object();
  for (const auto& task : tasks) {
    const std::string path = "model.model_dict." + task;
    const json& entry = model_dict.at(task);
    const Reference type_map = follow(entry.at("type_map"), shared, path + ".type_map");
    const Reference descriptor = follow(entry.at("descriptor"), shared, path + ".descriptor");
    const Reference fitting = follow(entry.at("fitting_net"), shared, path + ".fitting_net");
    json section = {{"type_map", type_map.value}, {"descriptor", descriptor.value}, {"fitting_net", fitting.value}};
    for (const char* key : {"data_stat_nbatch", "data_stat_protect"}) section[key] = in.resolved.at("model").at(key);
    const json model = resolve(model::model_schema(), section, path);
    if (canonical.is_null()) {
      canonical = model;
      canonical.erase("fitting_net");
      descriptor_key = descriptor.key;
    } else {
      if (model.at("type_map") != canonical.at("type_map"))
        fail("config key '{}.type_map' differs from the first task's: the tasks of one model share one type map",
             path);
      if (descriptor.key.empty() || descriptor.key != descriptor_key)
        fail("config key '{}.descriptor' must name the same model.shared_dict descriptor as every task (the shared "
             "trunk){}",
             path, descriptor_key.empty() ? "" : ": '" + descriptor_key + "'");
    }
    if (fitting.key.empty()) {
      fittings[task] = model.at("fitting_net");
      heads[task] = {{"fitting", task}, {"case", 0}};
    } else {
      if (model_dict.contains(fitting.key) && fitting.key != task)
        fail("config key '{}.fitting_net': shared key '{}' is also a task name", path, fitting.key);
      fittings[fitting.key] = model.at("fitting_net");
      heads[task] = {{"fitting", fitting.key}, {"case", static_cast<int64_t>(sharers[fitting.key].size())}};
      sharers[fitting.key].push_back(task);
    }
  }
  // A fitting net shared by n tasks takes an n-dimensional one-hot task input.
  for (const auto& [key, users] : sharers) {
    const auto n = static_cast<int64_t>(users.size());
    const int64_t given = fittings.at(key).at("dim_case_embd").get<int64_t>();
    if (given != 0 && given < n)
      fail("config key 'model.shared_dict.{}.dim_case_embd' is {} but {} tasks share this fitting net", key, given, n);
    if (given == 0) fittings[key]["dim_case_embd"] = n;
  }
  canonical["fitting_nets"] = fittings;
  canonical["heads"] = heads;
  in.model = canonical;

  double total = 0;
  for (const auto& task : tasks) {
    TaskSpec spec;
    spec.name = task;
    spec.loss = in.resolved.at("loss_dict").at(task);
    const json& data = training.at("data_dict").at(task);
    spec.training_data = data.at("training_data");
    if (data.contains("validation_data")) spec.validation_data = data.at("validation_data");
    if (training.contains("model_prob")) {
      spec.weight = training.at("model_prob").at(task).get<double>();
      total += spec.weight;
    }
    in.tasks.push_back(spec);
  }
  if (training.contains("model_prob")) {
    if (total <= 0) fail("config key 'training.model_prob' must have a positive entry");
    for (auto& spec : in.tasks) spec.weight /= total;
  }
  return in;
}

TrainingInput parse_single_task(const json& raw) {
  TrainingInput in;
  in.resolved = resolve(single_task_schema(), raw);
  in.model = model::EnergyModel::single_task_config(in.resolved.at("model"));
  TaskSpec spec;
  spec.name = model::EnergyModel::kDefaultHead;
  spec.loss = in.resolved.at("loss");
  spec.training_data = in.resolved.at("training").at("training_data");
  if (in.resolved.at("training").contains("validation_data"))
    spec.validation_data = in.resolved.at("training").at("validation_data");
  spec.weight = 1.0;
  in.tasks.push_back(spec);
  return in;
}

}  // namespace

config::Node single_task_schema() {
  std::vector<Field> training = {required("training_data", data_schema(false)),
                                 optional("validation_data", data_schema(true))};
  for (auto& field : training_loop_fields()) training.push_back(field);
  return object("atomforge single-task training input (DeePMD-kit layout)",
                {required("model", model::model_schema()), defaulted("learning_rate", learning_rate_schema(), json::object()),
                 defaulted("loss", loss_schema(), json::object()),
                 required("training", object("training loop", training))});
}

config::Node multi_task_schema() {
  Node task_data = object("a task's data", {required("training_data", data_schema(false)),
                                            optional("validation_data", data_schema(true))});
  std::vector<Field> training = {
      required("data_dict", map(task_data, "data per task")),
      optional("model_prob", map(non_negative(number("weight")), "task weights (normalised); default: "
                                                                  "proportional to each task's number of systems")),
      defaulted("multi_task_mode",
                string("\"sample\": each step trains one task drawn from model_prob (DeePMD-kit); \"all\": each "
                       "step minimises the model_prob-weighted sum of every task's loss (HydraGNN)",
                       {"sample", "all"}),
                "sample")};
  for (auto& field : training_loop_fields()) training.push_back(field);
  Node task_model = object(
      "a task's model: type_map, descriptor and fitting_net, each inline or a shared_dict key (\"key\" or "
      "\"key:shared_level\")",
      {required("type_map", any("element list or shared_dict key")),
       required("descriptor", any("descriptor or shared_dict key (every task shares one)")),
       defaulted("fitting_net", any("fitting net, or shared_dict key of a fitting net shared with a one-hot task "
                                    "input"),
                 json::object())});
  return object(
      "atomforge multi-task training input (DeePMD-kit layout)",
      {required("model",
                object("multi-task model",
                       {required("shared_dict", map(any("type map, descriptor or fitting net"), "shared parts")),
                        required("model_dict", map(task_model, "one model per task")),
                        defaulted("data_stat_nbatch", positive(integer("batches per system for statistics")), 10),
                        defaulted("data_stat_protect", positive(number("lower bound of the statistics' std")), 1e-2)})),
       defaulted("learning_rate", learning_rate_schema(), json::object()),
       required("loss_dict", map(loss_schema(), "loss per task")), required("training", object("training loop", training))});
}

TrainingInput parse_training_input(const json& raw) {
  const bool multi = raw.is_object() && raw.contains("model") && raw.at("model").is_object() &&
                     raw.at("model").contains("model_dict");
  return multi ? parse_multi_task(raw) : parse_single_task(raw);
}

TrainingInput load_training_input(const std::string& path) {
  json raw;
  try {
    raw = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  try {
    return parse_training_input(raw);
  } catch (...) {
    rethrow_with_context(path);
  }
}

}  // namespace atomforge::train
