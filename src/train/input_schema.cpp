#include "train/input_schema.hpp"

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "model/registry.hpp"

namespace atomforge::train {

using namespace config;

config::Node data_schema(bool validation) {
  return object(
      validation ? "validation data" : "training data",
      {required("systems", one_of({string("folder searched recursively for systems"),
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

config::Node input_schema() {
  Node learning_rate = tagged(
      "learning rate schedule", "type",
      {{"exp", object("lr(t) = max(start_lr * r^floor(t/decay_steps), stop_lr)",
                      {defaulted("start_lr", positive(number("learning rate at step 0")), 1e-3),
                       defaulted("stop_lr", positive(number("learning rate at the last step")), 1e-8),
                       defaulted("decay_steps", positive(integer("steps between decays")), 5000),
                       optional("decay_rate", positive(number("decay factor r; derived from stop_lr when absent"))),
                       defaulted("scale_by_worker", string("lr scaling with ranks", {"linear", "sqrt", "none"}),
                                 "linear")})}},
      "exp");
  Node loss = tagged(
      "loss", "type",
      {{"ener", object("energy, force and virial mean squared errors with prefactors moving with the lr",
                       {defaulted("start_pref_e", non_negative(number("energy prefactor at the start")), 0.02),
                        defaulted("limit_pref_e", non_negative(number("energy prefactor at the end")), 1.0),
                        defaulted("start_pref_f", non_negative(number("force prefactor at the start")), 1000.0),
                        defaulted("limit_pref_f", non_negative(number("force prefactor at the end")), 1.0),
                        defaulted("start_pref_v", non_negative(number("virial prefactor at the start")), 0.0),
                        defaulted("limit_pref_v", non_negative(number("virial prefactor at the end")), 0.0)})}},
      "ener");
  Node training = object(
      "training loop",
      {required("training_data", data_schema(false)),
       optional("validation_data", data_schema(true)),
       required("numb_steps", positive(integer("number of training steps")), {"stop_batch"}),
       optional("seed", integer("random seed of data sampling and (by default) of the model")),
       defaulted("disp_file", string("learning curve file"), "lcurve.out"),
       defaulted("disp_freq", positive(integer("steps between learning-curve rows")), 1000),
       defaulted("save_freq", positive(integer("steps between checkpoints")), 1000),
       defaulted("save_ckpt", string("checkpoint name prefix"), "model.ckpt"),
       defaulted("max_ckpt_keep", positive(integer("checkpoints kept")), 5),
       defaulted("disp_training", boolean("print progress"), true),
       defaulted("time_training", boolean("print timing"), true),
       defaulted("num_threads", non_negative(integer("intra-op threads; 0 keeps the environment's setting")), 0),
       defaulted("tensorboard", boolean("accepted for DeePMD-kit compatibility; ignored"), false),
       optional("tensorboard_log_dir", string("accepted for DeePMD-kit compatibility; ignored")),
       optional("tensorboard_freq", integer("accepted for DeePMD-kit compatibility; ignored")),
       defaulted("profiling", boolean("accepted for DeePMD-kit compatibility; ignored"), false),
       optional("profiling_file", string("accepted for DeePMD-kit compatibility; ignored"))});
  return object("atomforge single-task training input (DeePMD-kit layout)",
                {required("model", model::model_schema()), defaulted("learning_rate", learning_rate, json::object()),
                 defaulted("loss", loss, json::object()), required("training", training)});
}

config::json load_input(const std::string& path) {
  json raw;
  try {
    raw = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  try {
    return resolve(input_schema(), raw);
  } catch (...) {
    rethrow_with_context(path);
  }
}

}  // namespace atomforge::train
