#include "train/trainer.hpp"

#include <chrono>
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
#include "train/checkpoint.hpp"
#include "train/data_config.hpp"
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
  // An unseeded run is still reproducible: the drawn seed goes into input.resolved.json.
  if (!training.contains("seed")) training["seed"] = std::random_device{}() & 0x7fffffff;
  seed_ = training.at("seed").get<uint64_t>();
  numb_steps_ = training.at("numb_steps").get<int64_t>();
  if (training.at("num_threads").get<int64_t>() > 0)
    at::set_num_threads(static_cast<int>(training.at("num_threads").get<int64_t>()));

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

  const std::string base_dir = fs::absolute(options_.input_path).parent_path().string();
  uint64_t stream = 0;
  for (const auto& spec : input_.tasks) {
    Task task;
    task.spec = spec;
    task.head = model_->heads().size() == 1 ? model_->heads().front() : spec.name;
    if (!model_->has_head(task.head)) fail("{}: the model has no head for task '{}'", options_.input_path, spec.name);
    const std::string where = input_.multi_task ? "training.data_dict." + spec.name : "training";
    // Each task and split draws from its own stream.
    task.train = std::make_unique<data::Prefetcher>(load_dataset(spec.training_data, base_dir, model_->type_map(),
                                                                 seed_ + 2 * stream, where + ".training_data"));
    if (!spec.validation_data.is_null())
      task.valid = std::make_unique<data::Prefetcher>(load_dataset(spec.validation_data, base_dir, model_->type_map(),
                                                                   seed_ + 2 * stream + 1, where + ".validation_data"));
    ++stream;
    tasks_.push_back(std::move(task));
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
    // Descriptor statistics pool every task's data; each head's bias comes from its own task.
    std::vector<data::System> pooled;
    std::vector<int64_t> batch_sizes;
    for (const auto& task : tasks_) {
      pooled.insert(pooled.end(), task.train->systems().begin(), task.train->systems().end());
      batch_sizes.insert(batch_sizes.end(), task.train->batch_sizes().begin(), task.train->batch_sizes().end());
    }
    spdlog::info("computing descriptor statistics from {} systems and the energy bias of {} head(s)", pooled.size(),
                 tasks_.size());
    model_->compute_statistics(pooled, batch_sizes);
    for (const auto& task : tasks_) model_->fit_out_bias(task.head, task.train->systems());
  }
  // Everything is validated: only now does the run write anything.
  fs::create_directories(options_.output_dir);
  write_file_atomic((fs::path(options_.output_dir) / "input.resolved.json").string(),
                    input_.resolved.dump(2) + "\n");
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

LossValue Trainer::train_loss(Task& task, double lr, bool create_graph) {
  const data::LoadedBatch batch = task.train->next();
  const auto prediction = model_->evaluate(model_->prepare(batch.data, batch.rows()), task.head, create_graph);
  return (*task.loss)(prediction, make_labels(batch.data, batch.rows(), model_->dtype()), batch.data.natoms(), lr);
}

std::map<std::string, double> Trainer::validate(Task& task, double lr) {
  std::map<std::string, double> sums;
  const int64_t nbatch = task.spec.validation_data.at("numb_btch").get<int64_t>();
  for (int64_t b = 0; b < nbatch; ++b) {
    const data::LoadedBatch batch = task.valid->next();
    const auto prediction = model_->evaluate(model_->prepare(batch.data, batch.rows()), task.head, false);
    const auto value =
        (*task.loss)(prediction, make_labels(batch.data, batch.rows(), model_->dtype()), batch.data.natoms(), lr);
    for (const auto& [name, v] : value.metrics) sums[name] += v / static_cast<double>(nbatch);
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
      if (task.valid) columns.push_back(name + "_val" + suffix);
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

void Trainer::save(int64_t step) const {
  TensorFile file;
  model_->save(file);
  file.meta["kind"] = "atomforge-checkpoint";
  file.meta["step"] = step;
  file.meta["input"] = input_.resolved;
  nlohmann::ordered_json states = nlohmann::ordered_json::object();
  for (const auto& task : tasks_) {
    states[task.spec.name]["train"] = task.train->state();
    if (task.valid) states[task.spec.name]["valid"] = task.valid->state();
  }
  file.meta["data_state"] = states;
  adam_->save(file);
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
  if (start_step_ > 0) {
    truncate_lcurve_after(start_step_);
  } else {
    write_lcurve_header();
  }
  std::ofstream lcurve(lcurve_path(), std::ios::app);
  spdlog::info("training {} steps from step {} ({} parameters, {} task(s){}, {} threads)", numb_steps_, start_step_,
               model_->parameters().parameter_count(), tasks_.size(),
               tasks_.size() > 1 ? ", mode " + input_.mode : "", at::get_num_threads());

  const auto t0 = std::chrono::steady_clock::now();
  auto last = t0;
  int64_t last_step = start_step_;
  for (int64_t step = start_step_; step < numb_steps_; ++step) {
    const double lr = lr_->at(step);
    std::map<std::size_t, LossValue> trained;
    if (all_tasks) {
      at::Tensor total;
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        trained[k] = train_loss(tasks_[k], lr, true);
        const at::Tensor weighted = tasks_[k].spec.weight * trained[k].loss;
        total = total.defined() ? total + weighted : weighted;
      }
      total.backward();
    } else {
      std::vector<double> weights;
      for (const auto& task : tasks_) weights.push_back(task.spec.weight);
      const auto k = static_cast<std::size_t>(draw_task(seed_, step, weights));
      trained[k] = train_loss(tasks_[k], lr, true);
      trained[k].loss.backward();
    }
    adam_->step(lr);

    const int64_t display_step = step + 1;
    if (display_step % disp_freq == 0 || display_step == 1) {
      std::string row = fmt::format("{:7d}", display_step), line = fmt::format("step {}/{}", display_step, numb_steps_);
      for (std::size_t k = 0; k < tasks_.size(); ++k) {
        Task& task = tasks_[k];
        // As DeePMD-kit: a task not trained this step reports a fresh batch of its training data.
        const auto train_metrics = trained.count(k) ? trained.at(k).metrics : train_loss(task, lr, false).metrics;
        const auto valid_metrics = task.valid ? validate(task, lr) : std::map<std::string, double>{};
        const std::string suffix = input_.multi_task ? "_" + task.spec.name : "";
        for (const auto& name : task.loss->metric_names()) {
          const auto value = [&](const std::map<std::string, double>& m) { return m.count(name) ? m.at(name) : 0.0; };
          if (task.valid) row += fmt::format("   {:11.2e}", value(valid_metrics));
          row += fmt::format("   {:11.2e}", value(train_metrics));
          if (name == "rmse") continue;
          if (task.valid) line += fmt::format("  {}_val{} {:.3e}", name, suffix, value(valid_metrics));
          line += fmt::format("  {}_trn{} {:.3e}", name, suffix, value(train_metrics));
        }
      }
      lcurve << row << fmt::format("   {:8.1e}\n", lr);
      lcurve.flush();
      if (show_progress) {
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
  }
  end_progress_line();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("finished {} steps in {} ({:.3f} s/step); learning curve in {}", numb_steps_ - start_step_,
               format_duration(total), total / static_cast<double>(std::max<int64_t>(1, numb_steps_ - start_step_)),
               lcurve_path());
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
