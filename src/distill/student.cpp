#include "distill/student.hpp"

#include <filesystem>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "train/input_schema.hpp"
#include "train/trainer.hpp"

namespace atomforge::distill {

namespace {

config::json data_section(const config::json& training, const std::string& key, const std::vector<std::string>& systems) {
  config::json data = training.contains(key) ? training.at(key) : config::json::object();
  if (!data.is_object()) fail("training.{}: expected an object", key);
  if (data.contains("systems")) fail("training.{}.systems: set by distill (the labelled frames); remove it", key);
  data["systems"] = systems;
  return data;
}

}  // namespace

config::json student_training_input(const config::json& student, const std::vector<std::string>& teacher_type_map,
                                    const std::vector<std::string>& train, const std::vector<std::string>& valid) {
  config::json input = student;
  try {
    if (!input["model"].is_object()) fail("model: expected an object");
    if (input["model"].contains("model_dict")) fail("model.model_dict: the student is a single-task model");
    if (!input["model"].contains("type_map")) input["model"]["type_map"] = teacher_type_map;
    if (!input["training"].is_object()) fail("training: expected an object");
    input["training"]["training_data"] = data_section(input["training"], "training_data", train);
    input["training"]["validation_data"] = data_section(input["training"], "validation_data", valid);
    train::parse_training_input(input);
  } catch (...) {
    rethrow_with_context("student");
  }
  return input;
}

std::unique_ptr<model::EnergyModel> train_student(const config::json& input, const std::string& output_dir) {
  std::filesystem::create_directories(output_dir);
  train::TrainOptions options;
  options.input_path = (std::filesystem::path(output_dir) / "input.json").string();
  options.output_dir = output_dir;
  write_file_atomic(options.input_path, input.dump(2) + "\n");
  train::Trainer trainer(options);
  trainer.run();
  return trainer.model().extract_head(trainer.model().only_head());
}

}  // namespace atomforge::distill
