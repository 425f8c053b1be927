#pragma once
// Training, single- or multi-task: DeePMD-kit's loop (Adam, exponential lr, lcurve.out,
// checkpoints), deterministic with a seed and resumable bit for bit. Multi-task: one head per
// task on a shared trunk; each step trains one task drawn from model_prob ("sample") or the
// weighted sum of every task's loss ("all"). Fine-tuning starts from a pre-trained model's trunk
// and one of its heads (or a fresh head), with the energy bias re-fitted to the new data.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/prefetcher.hpp"
#include "model/energy_model.hpp"
#include "train/adam.hpp"
#include "train/energy_loss.hpp"
#include "train/input_schema.hpp"
#include "train/learning_rate.hpp"

namespace atomforge::train {

struct TrainOptions {
  std::string input_path;  // input.json
  std::string output_dir = ".";
  std::string restart;       // checkpoint to continue from
  std::string init_model;    // checkpoint whose parameters start the run (steps from 0)
  std::string finetune;      // pre-trained checkpoint or model to fine-tune
  std::string model_branch;  // its head to start from, or "RANDOM" for a fresh head
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options);
  void run();
  model::EnergyModel& model() { return *model_; }

 private:
  struct Task {
    TaskSpec spec;
    std::string head;
    std::unique_ptr<data::Prefetcher> train, valid;  // batches loaded on a background thread
    std::unique_ptr<EnergyLoss> loss;
  };

  void build_fine_tuned_model(uint64_t seed);
  LossValue train_loss(Task& task, double lr, bool create_graph);
  std::map<std::string, double> validate(Task& task, double lr);
  void log_task_step_counts() const;
  std::vector<std::string> lcurve_columns() const;
  void write_lcurve_header() const;
  void truncate_lcurve_after(int64_t step) const;
  std::string lcurve_path() const;
  void save(int64_t step) const;

  TrainOptions options_;
  TrainingInput input_;
  std::unique_ptr<model::EnergyModel> model_;
  std::vector<Task> tasks_;
  std::unique_ptr<Adam> adam_;
  std::unique_ptr<ExpLearningRate> lr_;
  uint64_t seed_ = 0;
  int64_t start_step_ = 0;
  int64_t numb_steps_ = 0;
};

}  // namespace atomforge::train
