#pragma once
// The student: a DeePMD-kit style training input built from the distill file's student section
// and the labelled folders, trained in process.
#include <memory>
#include <string>
#include <vector>

#include "core/config_schema.hpp"
#include "model/energy_model.hpp"

namespace atomforge::distill {

// The student section with model.type_map defaulting to the teacher's and the training and
// validation systems set to `train` and `valid` (absolute paths); the user may set the other
// data keys (batch_size...), not the systems. Validated by the training schema: errors name
// "student" and the key.
config::json student_training_input(const config::json& student, const std::vector<std::string>& teacher_type_map,
                                    const std::vector<std::string>& train, const std::vector<std::string>& valid);

// Writes `input` to output_dir/input.json, trains there (lcurve.out, checkpoints) and returns
// the trained single-head model.
std::unique_ptr<model::EnergyModel> train_student(const config::json& input, const std::string& output_dir);

}  // namespace atomforge::distill
