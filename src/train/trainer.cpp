#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/logging.hpp"
#include "core/tensor_file.hpp"
#include "model/device.hpp"
#include "train/backward.hpp"
#include "train/checkpoint.hpp"
#include "train/data_config.hpp"
#include "train/gradient_sync.hpp"
#include "train/head_groups.hpp"
#include "train/task_sampler.hpp"

namespace atomforge::train {

namespace fs = std::filesystem;

namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

Trainer::Trainer(const TrainOptions& options) : options_(options) {
  input_ = load_training_input(options_.input_path);
  auto& training = input_.resolved.at("training");
  comm_ = options_.connect ? options_.connect(training.at("parallel")) : std::make_shared<model::Solo>();
  // An unseeded run is still reproducible: the drawn seed goes into input.resolved.json.
  if (!training.contains("seed")) {
    // Rank 0's draw: the ranks must share one data stream.
    std::vector<at::Tensor> drawn = {at::full({1}, static_cast<int64_t>(std::random_device{}() & 0x7fffffff), at::kLong)};
    comm_->broadcast(drawn, 0);
    training["seed"] = drawn[0].item<int64_t>();
  }
  seed_ = training.at("seed").get<uint64_t>();
  numb_steps_ = training.at("numb_steps").get<int64_t>();
  if (training.at("num_threads").get<int64_t>() > 0)
    at::set_num_threads(static_cast<int>(training.at("num_threads").get<int64_t>()));
  const at::Device device = model::resolve_device(training.at("device").get<std::string>(),
                                                  options_.input_path + ": training.device", comm_->rank());
  inputs_ = std::make_unique<InputCache>(static_cast<int64_t>(training.at("input_cache_mb").get<double>() * (1 << 20)));

  std::optional<TensorFile> checkpoint;
  if (!options_.restart.empty()) checkpoint = load_tensor_file(options_.restart);
  if (checkpoint) {
    model_ = model::EnergyModel::load(*checkpoint, options_.restart);
  } else if (!options_.finetune.empty()) {
    if (input_.multi_task) fail("--finetune takes a single-task input.json");
    build_fine_tuned_model(seed_);
  } else {
    model_ = std::make_unique<model::EnergyModel>(input_.model, seed_);
  }
  full_model_config_ = model_->config();

  const std::string base_dir = fs::absolute(options_.input_path).parent_path().string();
  for (const auto& spec : input_.tasks) {
    Task task;
    task.spec = spec;
    task.head = model_->heads().size() == 1 ? model_->heads().front() : spec.name;
    if (!model_->has_head(task.head)) fail("{}: the model has no head for task '{}'", options_.input_path, spec.name);
    tasks_.push_back(std::move(task));
  }
  place_tasks();
  // Each task and split draws from its own stream; a rank reads only the tasks it trains.
  auto read_data = [&](const Task& task, std::size_t index, bool validation) {
    const std::string where = input_.multi_task ? "training.data_dict." + task.spec.name : "training";
    data::DataSet set = load_dataset(validation ? task.spec.validation_data : task.spec.training_data, base_dir,
                                     model_->type_map(), seed_ + 2 * index + (validation ? 1 : 0),
                                     where + (validation ? ".validation_data" : ".training_data"));
    set.scale_batch_sizes(task.here ? share_count_ : task.ranks);
    return set;
  };
  // Batches are loaded on a background thread, each rank's share only.
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    Task& task = tasks_[k];
    if (!task.here) continue;
    task.train = std::make_unique<data::Prefetcher>(read_data(task, k, false), share_index_, share_count_);
    if (!task.spec.validation_data.is_null())
      task.valid = std::make_unique<data::Prefetcher>(read_data(task, k, true), share_index_, share_count_);
  }
  if (input_.tasks.front().weight < 0) {  // model_prob absent: by number of systems
    double total = 0;
    for (auto& task : tasks_) total += static_cast<double>(task.train->systems().size());
    for (auto& task : tasks_) task.spec.weight = static_cast<double>(task.train->systems().size()) / total;
  }
  lr_ = std::make_unique<ExpLearningRate>(input_.resolved.at("learning_rate"), numb_steps_);
  for (auto& task : tasks_) task.loss = std::make_unique<EnergyLoss>(task.spec.loss, lr_->start());
  adam_ = std::make_unique<Adam>(model_->parameters());

  if (checkpoint) {
    adam_->load(*checkpoint, options_.restart);
    start_step_ = checkpoint->meta.at("step").get<int64_t>();
    const auto& states = checkpoint->meta.at("data_state");
    for (auto& task : tasks_) {
      if (!task.here) continue;
      if (!states.contains(task.spec.name)) fail("{}: no data state for task '{}'", options_.restart, task.spec.name);
      task.train->restore(states.at(task.spec.name).at("train"));
      if (task.valid && states.at(task.spec.name).contains("valid")) task.valid->restore(states.at(task.spec.name).at("valid"));
    }
    if (start_step_ >= numb_steps_)
      fail("{}: the checkpoint is at step {}, training.numb_steps is {}: nothing to do", options_.restart,
           start_step_, numb_steps_);
  } else if (!options_.finetune.empty()) {
    const Task& task = tasks_.front();
    spdlog::info("fine-tuning head '{}': re-fitting its energy bias to {} frames", task.head, task.train->total_frames());
    model_->fit_out_bias(task.head, task.train->systems(), /*residual=*/true);
  } else if (!options_.init_model.empty()) {
    const TensorFile init = load_tensor_file(options_.init_model);
    model_->parameters().load(init, "model.", options_.init_model);
  } else {
    // Descriptor statistics pool every task's data (rank 0's are broadcast below; with heads
    // spread over ranks, rank 0 reads the other tasks' training data once for them); each
    // head's bias comes from its own task.
    if (comm_->rank() == 0 || !heads_distributed_) {
      std::vector<data::System> pooled;
      std::vector<int64_t> batch_sizes;
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        std::optional<data::DataSet> other;
        if (!tasks_[k].train) other = read_data(tasks_[k], k, false);
        const auto& systems = other ? other->systems() : tasks_[k].train->systems();
        const auto& sizes = other ? other->batch_sizes() : tasks_[k].train->batch_sizes();
        pooled.insert(pooled.end(), systems.begin(), systems.end());
        batch_sizes.insert(batch_sizes.end(), sizes.begin(), sizes.end());
      }
      spdlog::info("computing descriptor statistics from {} systems", pooled.size());
      model_->compute_statistics(pooled, batch_sizes);
    }
    for (const auto& task : tasks_)
      if (task.here) model_->fit_out_bias(task.head, task.train->systems());
  }
  // Each rank built the same model from the same seed and data; the first rank of each group
  // is made the one truth anyway, so no platform difference can make the ranks drift apart.
  broadcast_values(trunk_tensors_, *comm_, 0);
  broadcast_values(head_tensors_, *group_comm_, 0);
  if (!device.is_cpu()) {
    model_->to(device);
    adam_->to(device);
    spdlog::info("training on {}", device.str());
  }
  // Everything is validated: only now does the run write anything.
  if (!writes_output()) return;
  fs::create_directories(options_.output_dir);
  write_file_atomic((fs::path(options_.output_dir) / "input.resolved.json").string(),
                    input_.resolved.dump(2) + "\n");
}

// Data parallel (heads "replicated"): every rank trains every task on its share of each batch;
// with graph parallelism, `graph` consecutive ranks share one share, each computing part of its
// graph. Head parallel ("distributed"): each task's group of ranks holds the trunk and only that
// task's head, and trains it on its share of the task's batch.
void Trainer::place_tasks() {
  const auto& parallel = input_.training().at("parallel");
  heads_distributed_ = parallel.at("heads").get<std::string>() == "distributed";
  if (heads_distributed_ && !(input_.multi_task && input_.mode == "all"))
    fail("{}: training.parallel.heads 'distributed' trains every task's head on its own ranks at every step: it "
         "needs a multi-task input with training.multi_task_mode 'all'",
         options_.input_path);
  if (heads_distributed_ && !input_.resolved.at("training").contains("model_prob"))
    fail("{}: training.parallel.heads 'distributed' shares the ranks out by task weight: set training.model_prob",
         options_.input_path);
  if (heads_distributed_ && comm_->world_size() == 1) {
    spdlog::warn("training.parallel.heads 'distributed' on one process: every head trains here");
    heads_distributed_ = false;
  }
  const int graph = static_cast<int>(parallel.at("graph").get<int64_t>());
  if (graph > 1) {
    if (heads_distributed_) fail("{}: training.parallel.graph > 1 with heads 'distributed' is not supported yet",
                                 options_.input_path);
    if (!model_->splits_graph())
      fail("{}: training.parallel.graph: the '{}' descriptor cannot split a graph over ranks (painn and dimenet can)",
           options_.input_path, model_->config().at("descriptor").at("type").get<std::string>());
    if (comm_->world_size() % graph != 0)
      fail("{}: training.parallel.graph {} does not divide the {} ranks", options_.input_path, graph,
           comm_->world_size());
  }
  if (!heads_distributed_) {
    for (auto& task : tasks_) {
      task.here = true;
      task.ranks = comm_->world_size();
    }
    group_comm_ = comm_;
    share_index_ = comm_->rank() / graph;
    share_count_ = comm_->world_size() / graph;
    for (int g = 0; g < share_count_ && graph > 1; ++g) {
      auto group = comm_->subgroup(g * graph, (g + 1) * graph);
      if (group) partition_ = std::make_shared<model::GraphPartition>(group);
    }
    if (graph > 1)
      spdlog::info("{} ranks: {} data-parallel share(s) x graph parallel over {}", comm_->world_size(), share_count_,
                   graph);
    for (auto& [name, tensor] : model_->parameters().parameters()) trunk_parameters_.push_back(tensor);
    for (const auto* list : {&model_->parameters().parameters(), &model_->parameters().buffers()})
      for (const auto& [name, tensor] : *list) trunk_tensors_.push_back(tensor);
    return;
  }
  std::vector<double> weights;
  for (const auto& task : tasks_) weights.push_back(task.spec.weight);
  const std::vector<RankRange> groups = head_groups(weights, comm_->world_size());
  std::string placement;
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    Task& task = tasks_[k];
    task.here = groups[k].contains(comm_->rank());
    task.ranks = groups[k].size();
    task.first_rank = groups[k].begin;
    auto group = comm_->subgroup(groups[k].begin, groups[k].end);
    if (task.here) {
      group_comm_ = group;
      share_index_ = group->rank();
      share_count_ = group->world_size();
      // Only this task's head from here on; parameter names stay those of the whole model.
      model_ = model_->extract_head(task.head);
    }
    placement += fmt::format("{}{} on ranks {}-{}", k ? ", " : "", task.spec.name, groups[k].begin, groups[k].end - 1);
  }
  for (const auto& task : tasks_)
    for (const auto& [name, fitting] : full_model_config_.at("heads").items())
      if (name != task.head && fitting.at("fitting") == full_model_config_.at("heads").at(task.head).at("fitting"))
        fail("{}: tasks '{}' and '{}' share a fitting net: its gradient would need a group of its own; use "
             "training.parallel.heads 'replicated'",
             options_.input_path, task.spec.name, name);
  // The trunk is everything named descriptor.*; the rest is this rank's head.
  for (const auto* list : {&model_->parameters().parameters(), &model_->parameters().buffers()})
    for (const auto& [name, tensor] : *list) {
      const bool trunk = name.rfind("descriptor.", 0) == 0;
      (trunk ? trunk_tensors_ : head_tensors_).push_back(tensor);
      if (list == &model_->parameters().parameters()) (trunk ? trunk_parameters_ : head_parameters_).push_back(tensor);
    }
  spdlog::info("heads distributed over {} ranks: {}", comm_->world_size(), placement);
  const Task& mine = *std::find_if(tasks_.begin(), tasks_.end(), [](const Task& t) { return t.here; });
  int64_t trunk_count = 0;
  for (const at::Tensor* p : trunk_parameters_) trunk_count += p->numel();
  // Logged on every rank (seen with -v): the proof that a rank holds one head only.
  spdlog::info("rank {}: task '{}', {} parameters (trunk {}, head {})", comm_->rank(), mine.spec.name,
               model_->parameters().parameter_count(), trunk_count, model_->parameters().parameter_count() - trunk_count);
}

void Trainer::build_fine_tuned_model(uint64_t seed) {
  const TensorFile file = load_tensor_file(options_.finetune);
  std::unique_ptr<model::EnergyModel> pretrained = model::EnergyModel::load(file, options_.finetune);
  // The new data may use any subset of the pre-trained elements, in any order: the model keeps
  // the pre-trained type map and data are matched to it by element name. Elements the trunk has
  // not seen are appended to it (graph trunks only).
  std::vector<std::string> added;
  for (const auto& element : input_.resolved.at("model").at("type_map"))
    if (std::find(pretrained->type_map().begin(), pretrained->type_map().end(), element.get<std::string>()) ==
        pretrained->type_map().end())
      added.push_back(element.get<std::string>());
  if (!added.empty()) {
    try {
      pretrained = pretrained->with_elements(added, seed);
    } catch (...) {
      rethrow_with_context(fmt::format("--finetune: model.type_map has elements the pre-trained model {} lacks",
                                       options_.finetune));
    }
    spdlog::info("--finetune: new elements {} join the pre-trained type map", fmt::join(added, ", "));
  }
  std::string branch = options_.model_branch;
  if (branch.empty()) branch = pretrained->only_head();
  if (input_.resolved.at("model").at("descriptor") != pretrained->config().at("descriptor"))
    spdlog::info("--finetune: the descriptor is the pre-trained model's; model.descriptor of {} is not used",
                 options_.input_path);
  if (branch == "RANDOM") {
    // The pre-trained trunk with a fresh head of the input's fitting net.
    nlohmann::ordered_json config = pretrained->config();
    config["fitting_nets"] = {{model::EnergyModel::kDefaultHead, input_.resolved.at("model").at("fitting_net")}};
    config["heads"] = {{model::EnergyModel::kDefaultHead, {{"fitting", model::EnergyModel::kDefaultHead}, {"case", 0}}}};
    model_ = std::make_unique<model::EnergyModel>(config, seed);
    TensorFile trunk;
    pretrained->parameters().save(trunk, "");
    for (const auto& [name, tensor] : model_->parameters().parameters())
      if (name.rfind("descriptor.", 0) == 0) *tensor = model::from_blob(trunk.blobs.at(name)).set_requires_grad(tensor->requires_grad());
    for (const auto& [name, tensor] : model_->parameters().buffers())
      if (name.rfind("descriptor.", 0) == 0) *tensor = model::from_blob(trunk.blobs.at(name));
  } else {
    model_ = pretrained->extract_head(branch);
  }
  input_.model = model_->config();
  input_.resolved["finetune"] = {{"from", options_.finetune}, {"model_branch", branch}};
}

// Every rank of the group holds metrics of an equal share of the batch: the batch's mean square
// error is the mean of the ranks' mean squares.
std::map<std::string, double> Trainer::over_group(std::map<std::string, double> metrics) const {
  if (group_comm_->world_size() == 1 || metrics.empty()) return metrics;
  std::vector<at::Tensor> squares = {at::empty({static_cast<int64_t>(metrics.size())}, at::kDouble)};
  int64_t i = 0;
  for (const auto& [name, value] : metrics) squares[0][i++] = value * value;
  group_comm_->allreduce_sum(squares);
  i = 0;
  for (auto& [name, value] : metrics) value = std::sqrt(squares[0][i++].item<double>() / group_comm_->world_size());
  return metrics;
}

// With heads spread over groups, rank 0 (which writes lcurve.out) learns the other tasks'
// metrics from the first rank of each group. Every task's metric names are known everywhere.
std::vector<std::map<std::string, double>> Trainer::to_rank_0(std::vector<std::map<std::string, double>> metrics) const {
  if (!heads_distributed_) return metrics;
  std::vector<int64_t> offsets = {0};
  for (const auto& task : tasks_) offsets.push_back(offsets.back() + 2 * static_cast<int64_t>(task.loss->metric_names().size()));
  std::vector<at::Tensor> values = {at::zeros({offsets.back()}, at::kDouble)};
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    int64_t i = offsets[k];
    for (const auto& name : tasks_[k].loss->metric_names())
      for (const auto* split : {&metrics[2 * k], &metrics[2 * k + 1]}) {
        if (tasks_[k].here && group_comm_->rank() == 0 && split->count(name)) values[0][i] = split->at(name) + 1.0;
        ++i;
      }
  }
  comm_->allreduce_sum(values);
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    int64_t i = offsets[k];
    for (const auto& name : tasks_[k].loss->metric_names())
      for (auto* split : {&metrics[2 * k], &metrics[2 * k + 1]}) {
        const double value = values[0][i++].item<double>();
        if (value > 0) (*split)[name] = value - 1.0;  // stored +1: 0 means "not measured"
      }
  }
  return metrics;
}

LossValue Trainer::train_loss(Task& task, double lr, bool create_graph) {
  const data::LoadedBatch batch = task.train->next();
  model::ModelInput input = inputs_->get(*model_, data_set_id(task, false), batch);
  input.partition = partition_;
  const auto prediction = model_->evaluate(input, task.head, create_graph);
  return (*task.loss)(prediction, make_labels(batch.data, batch.rows(), model_->dtype()), batch.data.natoms(), lr);
}

std::map<std::string, double> Trainer::validate(Task& task, double lr) {
  std::map<std::string, double> sums;
  const int64_t nbatch = task.spec.validation_data.at("numb_btch").get<int64_t>();
  for (int64_t b = 0; b < nbatch; ++b) {
    const data::LoadedBatch batch = task.valid->next();
    model::ModelInput input = inputs_->get(*model_, data_set_id(task, true), batch);
    input.partition = partition_;
    const auto prediction = model_->evaluate(input, task.head, false);
    const auto value =
        (*task.loss)(prediction, make_labels(batch.data, batch.rows(), model_->dtype()), batch.data.natoms(), lr);
    for (const auto& [name, v] : over_group(value.metrics)) sums[name] += v / static_cast<double>(nbatch);
  }
  return sums;
}

std::string Trainer::lcurve_path() const {
  return (fs::path(options_.output_dir) / input_.training().at("disp_file").get<std::string>()).string();
}

// DeePMD-kit's columns: per metric a (val, trn) pair; multi-task appends _TASK to each.
std::vector<std::string> Trainer::lcurve_columns() const {
  std::vector<std::string> columns;
  for (const auto& task : tasks_) {
    const std::string suffix = input_.multi_task ? "_" + task.spec.name : "";
    for (const auto& name : task.loss->metric_names()) {
      if (has_validation(task)) columns.push_back(name + "_val" + suffix);
      columns.push_back(name + "_trn" + suffix);
    }
  }
  return columns;
}

void Trainer::write_lcurve_header() const {
  std::string header = "#" + fmt::format("{:>6s}", "step");
  for (const auto& column : lcurve_columns()) header += fmt::format("   {:>11s}", column);
  header += fmt::format("   {:>8s}\n", "lr");
  write_file_atomic(lcurve_path(), header);
}

void Trainer::truncate_lcurve_after(int64_t step) const {
  if (!fs::exists(lcurve_path())) {
    write_lcurve_header();
    return;
  }
  // Rows written after the checkpoint by the interrupted run are dropped: they are redone.
  std::istringstream in(read_file(lcurve_path()));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#' && std::stoll(line) > step) break;
    kept += line + "\n";
  }
  write_file_atomic(lcurve_path(), kept);
}

// Every rank calls this (with heads spread over groups it is a collective); rank 0 writes.
void Trainer::save(int64_t step) const {
  TensorFile file;
  model_->save(file);
  file.meta["kind"] = "atomforge-checkpoint";
  file.meta["step"] = step;
  file.meta["input"] = input_.resolved;
  nlohmann::ordered_json states = nlohmann::ordered_json::object();
  for (const auto& task : tasks_) {
    if (!task.here) continue;
    states[task.spec.name]["train"] = task.train->state();
    if (task.valid) states[task.spec.name]["valid"] = task.valid->state();
  }
  file.meta["data_state"] = states;
  adam_->save(file);
  if (heads_distributed_) {
    // The first rank of each group sends its head (arrays, optimiser moments, data position):
    // the checkpoint is then that of one process training every head.
    for (const auto& task : tasks_) {
      if (task.first_rank == 0) continue;
      std::string bytes;
      if (comm_->rank() == task.first_rank) {
        TensorFile head;
        for (const auto& [name, blob] : file.blobs)
          if (name.find("descriptor.") == std::string::npos) head.blobs[name] = blob;
        head.meta["data_state"] = states;
        bytes = serialize_tensor_file(head);
      }
      broadcast_bytes(bytes, *comm_, task.first_rank);
      if (!writes_output()) continue;
      const TensorFile head = parse_tensor_file(bytes, "the head of task '" + task.spec.name + "'");
      file.blobs.insert(head.blobs.begin(), head.blobs.end());
      for (const auto& [name, state] : head.meta.at("data_state").items()) file.meta["data_state"][name] = state;
    }
    file.meta["model"] = full_model_config_;
    std::vector<std::string> heads;
    for (const auto& [name, head] : full_model_config_.at("heads").items()) heads.push_back(name);
    file.meta["heads"] = heads;
  }
  if (!writes_output()) return;
  const auto& training = input_.training();
  write_checkpoint(options_.output_dir, training.at("save_ckpt").get<std::string>(), step, file,
                   static_cast<int>(training.at("max_ckpt_keep").get<int64_t>()));
}

void Trainer::run() {
  const auto& training = input_.training();
  const int64_t disp_freq = training.at("disp_freq").get<int64_t>();
  const int64_t save_freq = training.at("save_freq").get<int64_t>();
  const bool show_progress = training.at("disp_training").get<bool>();
  const bool all_tasks = input_.mode == "all";
  const auto bucket_bytes = static_cast<int64_t>(training.at("parallel").at("bucket_mb").get<double>() * (1 << 20));
  std::ofstream lcurve;
  if (writes_output()) {
    if (start_step_ > 0) {
      truncate_lcurve_after(start_step_);
    } else {
      write_lcurve_header();
    }
    lcurve.open(lcurve_path(), std::ios::app);
  }
  spdlog::info("training {} steps from step {} ({} parameters, {} task(s){}, {} threads{})", numb_steps_, start_step_,
               model_->parameters().parameter_count(), tasks_.size(),
               tasks_.size() > 1 ? ", mode " + input_.mode : "", at::get_num_threads(),
               comm_->world_size() == 1        ? ""
               : heads_distributed_            ? fmt::format(", {} ranks, heads distributed", comm_->world_size())
                                               : fmt::format(", {} ranks, data parallel", comm_->world_size()));

  const int64_t payload_at_start = comm_->payload_bytes();
  int64_t step_payload = 0;  // of the training steps alone
  const auto t0 = std::chrono::steady_clock::now();
  // The first step also builds its inputs and faults in every page of its peak memory (seconds
  // for a large graph on some machines); the time after it is the steady rate (as DeePMD-kit
  // reports its average "excluding the first batches").
  std::optional<std::chrono::steady_clock::time_point> after_first;
  auto last = t0;
  int64_t last_step = start_step_;
  for (int64_t step = start_step_; step < numb_steps_; ++step) {
    const double lr = lr_->at(step);
    const int64_t payload_before_step = comm_->payload_bytes();
    std::map<std::size_t, LossValue> trained;
    // Each rank's loss is its share's: summed over the task's ranks it is the whole batch's
    // (mode "all": the model_prob-weighted sum over tasks, with heads replicated or spread).
    auto share_of = [&](std::size_t k) { return trained[k].loss / static_cast<double>(tasks_[k].ranks); };
    if (all_tasks) {
      at::Tensor total;
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        if (!tasks_[k].here) continue;
        trained[k] = train_loss(tasks_[k], lr, true);
        const at::Tensor weighted = tasks_[k].spec.weight * share_of(k);
        total = total.defined() ? total + weighted : weighted;
      }
      backward_to_parameters(total, model_->parameters());
    } else {
      std::vector<double> weights;
      for (const auto& task : tasks_) weights.push_back(task.spec.weight);
      const auto k = static_cast<std::size_t>(draw_task(seed_, step, weights));
      trained[k] = train_loss(tasks_[k], lr, true);
      backward_to_parameters(share_of(k), model_->parameters());
    }
    sum_gradients(trunk_parameters_, *comm_, bucket_bytes);
    sum_gradients(head_parameters_, *group_comm_, bucket_bytes);
    adam_->step(lr);
    step_payload += comm_->payload_bytes() - payload_before_step;

    const int64_t display_step = step + 1;
    if (display_step % disp_freq == 0 || display_step == 1) {
      // Per task: training then validation metrics, over the whole batch, known to rank 0.
      std::vector<std::map<std::string, double>> metrics(2 * tasks_.size());
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        Task& task = tasks_[k];
        if (!task.here) continue;
        // As DeePMD-kit: a task not trained this step reports a fresh batch of its training data.
        metrics[2 * k] = over_group(trained.count(k) ? trained.at(k).metrics : train_loss(task, lr, false).metrics);
        if (task.valid) metrics[2 * k + 1] = validate(task, lr);
      }
      metrics = to_rank_0(std::move(metrics));
      std::string row = fmt::format("{:7d}", display_step), line = fmt::format("step {}/{}", display_step, numb_steps_);
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        const Task& task = tasks_[k];
        const auto& train_metrics = metrics[2 * k];
        const auto& valid_metrics = metrics[2 * k + 1];
        const bool validated = has_validation(task);
        const std::string suffix = input_.multi_task ? "_" + task.spec.name : "";
        for (const auto& name : task.loss->metric_names()) {
          const auto value = [&](const std::map<std::string, double>& m) { return m.count(name) ? m.at(name) : 0.0; };
          if (validated) row += fmt::format("   {:11.2e}", value(valid_metrics));
          row += fmt::format("   {:11.2e}", value(train_metrics));
          if (name == "rmse") continue;
          if (validated) line += fmt::format("  {}_val{} {:.3e}", name, suffix, value(valid_metrics));
          line += fmt::format("  {}_trn{} {:.3e}", name, suffix, value(train_metrics));
        }
      }
      if (writes_output()) {
        lcurve << row << fmt::format("   {:8.1e}\n", lr);
        lcurve.flush();
      }
      if (show_progress && writes_output()) {
        const auto now = std::chrono::steady_clock::now();
        const double rate = static_cast<double>(display_step - last_step) /
                            std::max(std::chrono::duration<double>(now - last).count(), 1e-9);
        line += fmt::format("  lr {:.1e}  {:.2f} steps/s  ETA {}", lr, rate,
                            format_duration(static_cast<double>(numb_steps_ - display_step) / rate));
        progress_line(line);
        last = now;
        last_step = display_step;
      }
    }
    if (display_step % save_freq == 0 || display_step == numb_steps_) save(display_step);
    if (!after_first) after_first = std::chrono::steady_clock::now();
  }
  end_progress_line();
  const auto end = std::chrono::steady_clock::now();
  const double total = std::chrono::duration<double>(end - t0).count();
  const int64_t steps_run = numb_steps_ - start_step_;
  const std::string steady =
      steps_run > 1 ? fmt::format("; {:.3f} s/step after the first",
                                  std::chrono::duration<double>(end - *after_first).count() /
                                      static_cast<double>(steps_run - 1))
                    : "";
  spdlog::info("finished {} steps in {} ({:.3f} s/step{}); learning curve in {}", steps_run, format_duration(total),
               total / static_cast<double>(std::max<int64_t>(1, steps_run)), steady, lcurve_path());
  if (comm_->world_size() > 1) {
    const double steps = static_cast<double>(std::max<int64_t>(1, steps_run));
    spdlog::info("collectives: {:.3f} MB per training step handed to all-reduce/broadcast by rank 0, and {:.3f} MB "
                 "per step for learning-curve rows and checkpoints",
                 static_cast<double>(step_payload) / 1e6 / steps,
                 static_cast<double>(comm_->payload_bytes() - payload_at_start - step_payload) / 1e6 / steps);
  }
  if (inputs_->hits() + inputs_->misses() > 0)
    spdlog::info("model inputs: {} frames built, {} reused ({:.1f} MB kept)", inputs_->misses(), inputs_->hits(),
                 static_cast<double>(inputs_->bytes()) / 1e6);
  if (tasks_.size() > 1 && !all_tasks) log_task_step_counts();
}

// Draws depend only on (seed, step), so the counts cover the whole run, restarts included.
void Trainer::log_task_step_counts() const {
  std::vector<double> weights;
  for (const auto& task : tasks_) weights.push_back(task.spec.weight);
  std::vector<int64_t> counts(tasks_.size(), 0);
  for (int64_t step = 0; step < numb_steps_; ++step) ++counts[static_cast<std::size_t>(draw_task(seed_, step, weights))];
  std::string line;
  for (std::size_t k = 0; k < tasks_.size(); ++k)
    line += fmt::format("{}{} {} ({:.1f} %)", k ? ", " : "", tasks_[k].spec.name, counts[k],
                        100.0 * static_cast<double>(counts[k]) / static_cast<double>(std::max<int64_t>(1, numb_steps_)));
  spdlog::info("training steps per task (mode sample, steps 0-{}): {}", numb_steps_, line);
}

}  // namespace atomforge::train
