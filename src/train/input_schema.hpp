#pragma once
// The declared schemas of input.json in DeePMD-kit's layouts: single task (model, learning_rate,
// loss, training) and multi-task (model.shared_dict + model.model_dict, loss_dict,
// training.data_dict, training.model_prob). load_training_input resolves either against its
// schema, follows shared_dict references, checks the tasks against each other, and returns the
// canonical model config with one head per task.
#include <string>
#include <vector>

#include "core/config_schema.hpp"

namespace atomforge::train {

config::Node single_task_schema();
config::Node multi_task_schema();
config::Node data_schema(bool validation);

struct TaskSpec {
  std::string name;                       // the task, and the model head it trains
  config::json loss;                      // resolved loss section
  config::json training_data;
  config::json validation_data;           // null when absent
  double weight = -1;                     // model_prob (normalised); < 0: by number of systems
};

struct TrainingInput {
  config::json resolved;  // the user's input with every default (written to input.resolved.json)
  config::json model;     // canonical model config (see model/energy_model.hpp)
  bool multi_task = false;
  std::string mode = "sample";  // "sample": one task per step; "all": weighted sum of every task
  std::vector<TaskSpec> tasks;
  const config::json& training() const { return resolved.at("training"); }
};

// Reads `path`; errors name the file and the JSON path of the offending key.
TrainingInput load_training_input(const std::string& path);
TrainingInput parse_training_input(const config::json& raw);

}  // namespace atomforge::train
