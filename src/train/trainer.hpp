#pragma once
// Training, single- or multi-task: DeePMD-kit's loop (Adam, exponential lr, lcurve.out,
// checkpoints), deterministic with a seed and resumable bit for bit. Multi-task: one head per
// task on a shared trunk; each step trains one task drawn from model_prob ("sample") or the
// weighted sum of every task's loss ("all"). Fine-tuning starts from a pre-trained model's trunk
// and one of its heads (or a fresh head), with the energy bias re-fitted to the new data.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/prefetcher.hpp"
#include "model/energy_model.hpp"
#include "train/adam.hpp"
#include "model/communicator.hpp"
#include "train/energy_loss.hpp"
#include "train/input_cache.hpp"
#include "train/input_schema.hpp"
#include "train/learning_rate.hpp"

namespace atomforge::train {

using model::Communicator;

struct TrainOptions {
  std::string input_path;  // input.json
  std::string output_dir = ".";
  std::string restart;       // checkpoint to continue from
  std::string init_model;    // checkpoint whose parameters start the run (steps from 0)
  std::string finetune;      // pre-trained checkpoint or model to fine-tune
  std::string model_branch;  // its head to start from, or "RANDOM" for a fresh head
  // Joins the ranks this run trains on, given the input's training.parallel section; null
  // trains in this process alone.
  std::function<std::shared_ptr<Communicator>(const nlohmann::ordered_json& parallel)> connect;
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
    bool here = true;    // this rank trains the task
    int ranks = 1;       // how many ranks train it, each on its share of the batch
    int first_rank = 0;  // the first of them (holds the head's copy that is saved)
  };

  void build_fine_tuned_model(uint64_t seed);
  void place_tasks();
  static bool has_validation(const Task& task) { return !task.spec.validation_data.is_null(); }
  // Which data set of the input cache: each task's training and validation sets.
  int data_set_id(const Task& task, bool validation) const {
    return 2 * static_cast<int>(&task - tasks_.data()) + (validation ? 1 : 0);
  }
  LossValue train_loss(Task& task, double lr, bool create_graph);
  std::map<std::string, double> validate(Task& task, double lr);
  std::map<std::string, double> over_group(std::map<std::string, double> metrics) const;
  std::vector<std::map<std::string, double>> to_rank_0(std::vector<std::map<std::string, double>> metrics) const;
  bool writes_output() const { return comm_->rank() == 0; }
  void log_task_step_counts() const;
  std::vector<std::string> lcurve_columns() const;
  void write_lcurve_header() const;
  void truncate_lcurve_after(int64_t step) const;
  std::string lcurve_path() const;
  void save(int64_t step) const;

  TrainOptions options_;
  std::shared_ptr<Communicator> comm_;        // every rank
  std::shared_ptr<Communicator> group_comm_;  // the ranks sharing this rank's heads (all, unless distributed)
  bool heads_distributed_ = false;
  int share_index_ = 0, share_count_ = 1;  // this rank's data share: which, of how many
  std::shared_ptr<const model::GraphPartition> partition_;  // graph parallelism; null without
  nlohmann::ordered_json full_model_config_;  // every head's, for checkpoints
  // Reduced over every rank (trunk) or over the group (head); with replicated heads all is trunk.
  std::vector<at::Tensor*> trunk_parameters_, head_parameters_, trunk_tensors_, head_tensors_;
  TrainingInput input_;
  std::unique_ptr<model::EnergyModel> model_;
  std::vector<Task> tasks_;
  std::unique_ptr<Adam> adam_;
  std::unique_ptr<InputCache> inputs_;  // frames' model inputs kept across epochs
  std::unique_ptr<ExpLearningRate> lr_;
  uint64_t seed_ = 0;
  int64_t start_step_ = 0;
  int64_t numb_steps_ = 0;
};

}  // namespace atomforge::train
