#pragma once
// Single-task training: DeePMD-kit's loop (one batch per step, Adam, exponential lr, lcurve.out,
// checkpoints), deterministic with a seed and resumable bit for bit.
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "model/energy_model.hpp"
#include "train/adam.hpp"
#include "train/energy_loss.hpp"
#include "train/learning_rate.hpp"

namespace atomforge::train {

struct TrainOptions {
  std::string input_path;  // input.json
  std::string output_dir = ".";
  std::string restart;     // checkpoint to continue from
  std::string init_model;  // checkpoint or model whose parameters start the run (steps from 0)
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options);
  void run();
  model::EnergyModel& model() { return *model_; }

 private:
  void write_lcurve_header() const;
  void truncate_lcurve_after(int64_t step) const;
  std::map<std::string, double> validate(double lr);
  void save(int64_t step) const;

  TrainOptions options_;
  nlohmann::ordered_json input_;
  std::unique_ptr<model::EnergyModel> model_;
  std::unique_ptr<data::DataSet> train_data_;
  std::unique_ptr<data::DataSet> valid_data_;
  std::unique_ptr<Adam> adam_;
  std::unique_ptr<EnergyLoss> loss_;
  std::unique_ptr<ExpLearningRate> lr_;
  int64_t start_step_ = 0;
  int64_t numb_steps_ = 0;
};

}  // namespace atomforge::train
