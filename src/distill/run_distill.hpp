#pragma once
// The distillation pipeline: explore with the teacher, select frames, label them with the
// teacher, train the student on them, report. Writes into one folder: labelled/{train,valid}/
// (npy systems, one per composition), student/ (training run), student.pth, report.json.
#include <string>

#include "core/config_schema.hpp"
#include "distill/distill_input.hpp"

namespace atomforge::distill {

// Returns the report (also written to output_dir/report.json).
config::json run_distill(const DistillOptions& options, const std::string& output_dir);

}  // namespace atomforge::distill
