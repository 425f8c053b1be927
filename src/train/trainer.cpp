#include "train/trainer.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/logging.hpp"
#include "core/tensor_file.hpp"
#include "train/checkpoint.hpp"
#include "train/data_config.hpp"
#include "train/input_schema.hpp"

namespace atomforge::train {

namespace fs = std::filesystem;

namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

Trainer::Trainer(const TrainOptions& options) : options_(options) {
  input_ = load_input(options_.input_path);
  auto& training = input_.at("training");
  // An unseeded run is still reproducible: the drawn seed goes into input.resolved.json.
  if (!training.contains("seed")) training["seed"] = std::random_device{}() & 0x7fffffff;
  const auto seed = training.at("seed").get<uint64_t>();
  numb_steps_ = training.at("numb_steps").get<int64_t>();
  if (training.at("num_threads").get<int64_t>() > 0)
    at::set_num_threads(static_cast<int>(training.at("num_threads").get<int64_t>()));

  std::optional<TensorFile> checkpoint;
  if (!options_.restart.empty()) checkpoint = load_tensor_file(options_.restart);
  if (checkpoint) {
    model_ = model::EnergyModel::load(*checkpoint, options_.restart);
    if (model_->config() != model::EnergyModel::single_task_config(input_.at("model")))
      spdlog::warn("--restart: the model section of {} differs from the checkpoint's; the checkpoint's is used",
                   options_.input_path);
  } else {
    model_ = std::make_unique<model::EnergyModel>(model::EnergyModel::single_task_config(input_.at("model")), seed);
  }

  const std::string base_dir = fs::absolute(options_.input_path).parent_path().string();
  const auto& type_map = model_->type_map();
  train_data_ = std::make_unique<data::DataSet>(
      load_dataset(training.at("training_data"), base_dir, type_map, seed, "training.training_data"));
  if (training.contains("validation_data"))
    valid_data_ = std::make_unique<data::DataSet>(load_dataset(training.at("validation_data"), base_dir, type_map,
                                                               seed + 1, "training.validation_data"));
  lr_ = std::make_unique<ExpLearningRate>(input_.at("learning_rate"), numb_steps_);
  loss_ = std::make_unique<EnergyLoss>(input_.at("loss"), lr_->start());
  adam_ = std::make_unique<Adam>(model_->parameters());

  if (checkpoint) {
    adam_->load(*checkpoint, options_.restart);
    start_step_ = checkpoint->meta.at("step").get<int64_t>();
    train_data_->restore(checkpoint->meta.at("train_data_state"));
    if (valid_data_ && checkpoint->meta.contains("valid_data_state"))
      valid_data_->restore(checkpoint->meta.at("valid_data_state"));
    if (start_step_ >= numb_steps_)
      fail("{}: the checkpoint is at step {}, training.numb_steps is {}: nothing to do", options_.restart,
           start_step_, numb_steps_);
  } else if (!options_.init_model.empty()) {
    const TensorFile init = load_tensor_file(options_.init_model);
    model_->parameters().load(init, "model.", options_.init_model);
  } else {
    spdlog::info("computing descriptor statistics and the energy bias from {} training frames",
                 train_data_->total_frames());
    model_->compute_statistics(train_data_->systems(), train_data_->batch_sizes());
    model_->fit_out_bias(train_data_->systems());
  }
  // Everything is validated: only now does the run write anything.
  fs::create_directories(options_.output_dir);
  write_file_atomic((fs::path(options_.output_dir) / "input.resolved.json").string(), input_.dump(2) + "\n");
}

void Trainer::write_lcurve_header() const {
  std::ostringstream header;
  header << "#" << fmt::format("{:>6s}", "step");
  for (const auto& name : loss_->metric_names()) {
    if (valid_data_) header << fmt::format("   {:>11s}", name + "_val");
    header << fmt::format("   {:>11s}", name + "_trn");
  }
  header << fmt::format("   {:>8s}\n", "lr");
  const std::string path = (fs::path(options_.output_dir) / input_.at("training").at("disp_file").get<std::string>()).string();
  write_file_atomic(path, header.str());
}

void Trainer::truncate_lcurve_after(int64_t step) const {
  const std::string path = (fs::path(options_.output_dir) / input_.at("training").at("disp_file").get<std::string>()).string();
  if (!fs::exists(path)) {
    write_lcurve_header();
    return;
  }
  // Rows written after the checkpoint by the interrupted run are dropped: they are redone.
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#' && std::stoll(line) > step) break;
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

std::map<std::string, double> Trainer::validate(double lr) {
  std::map<std::string, double> sums;
  const int64_t nbatch = input_.at("training").at("validation_data").at("numb_btch").get<int64_t>();
  for (int64_t b = 0; b < nbatch; ++b) {
    const data::Batch batch = valid_data_->next();
    const auto& system = valid_data_->systems()[batch.system];
    const auto prediction = model_->evaluate(model_->prepare(system, batch.frames), false);
    const auto value = (*loss_)(prediction, make_labels(system, batch.frames, model_->dtype()), system.natoms(), lr);
    for (const auto& [name, v] : value.metrics) sums[name] += v / static_cast<double>(nbatch);
  }
  return sums;
}

void Trainer::save(int64_t step) const {
  TensorFile file;
  file.meta["kind"] = "atomforge-checkpoint";
  model_->save(file);
  file.meta["kind"] = "atomforge-checkpoint";
  file.meta["step"] = step;
  file.meta["input"] = input_;
  file.meta["train_data_state"] = train_data_->state();
  if (valid_data_) file.meta["valid_data_state"] = valid_data_->state();
  adam_->save(file);
  const auto& training = input_.at("training");
  write_checkpoint(options_.output_dir, training.at("save_ckpt").get<std::string>(), step, file,
                   static_cast<int>(training.at("max_ckpt_keep").get<int64_t>()));
}

void Trainer::run() {
  const auto& training = input_.at("training");
  const int64_t disp_freq = training.at("disp_freq").get<int64_t>();
  const int64_t save_freq = training.at("save_freq").get<int64_t>();
  const bool show_progress = training.at("disp_training").get<bool>();
  const std::string lcurve_path = (fs::path(options_.output_dir) / training.at("disp_file").get<std::string>()).string();
  if (start_step_ > 0) {
    truncate_lcurve_after(start_step_);
  } else {
    write_lcurve_header();
  }
  std::ofstream lcurve(lcurve_path, std::ios::app);
  const auto metric_names = loss_->metric_names();
  spdlog::info("training {} steps from step {} ({} parameters, {} threads)", numb_steps_, start_step_,
               model_->parameters().parameter_count(), at::get_num_threads());

  const auto t0 = std::chrono::steady_clock::now();
  auto last = t0;
  int64_t last_step = start_step_;
  for (int64_t step = start_step_; step < numb_steps_; ++step) {
    const double lr = lr_->at(step);
    const data::Batch batch = train_data_->next();
    const auto& system = train_data_->systems()[batch.system];
    const auto prediction = model_->evaluate(model_->prepare(system, batch.frames), true);
    const auto value =
        (*loss_)(prediction, make_labels(system, batch.frames, model_->dtype()), system.natoms(), lr);
    value.loss.backward();
    adam_->step(lr);

    const int64_t display_step = step + 1;
    if (display_step % disp_freq == 0 || display_step == 1) {
      const auto valid = valid_data_ ? validate(lr) : std::map<std::string, double>{};
      lcurve << fmt::format("{:7d}", display_step);
      for (const auto& name : metric_names) {
        if (valid_data_) lcurve << fmt::format("   {:11.2e}", valid.count(name) ? valid.at(name) : 0.0);
        lcurve << fmt::format("   {:11.2e}", value.metrics.count(name) ? value.metrics.at(name) : 0.0);
      }
      lcurve << fmt::format("   {:8.1e}\n", lr);
      lcurve.flush();
      if (show_progress) {
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - last).count();
        const double rate = static_cast<double>(display_step - last_step) / std::max(seconds, 1e-9);
        std::string line = fmt::format("step {}/{}", display_step, numb_steps_);
        for (const auto& name : metric_names) {
          if (valid.count(name)) line += fmt::format("  {}_val {:.3e}", name, valid.at(name));
          if (value.metrics.count(name)) line += fmt::format("  {}_trn {:.3e}", name, value.metrics.at(name));
        }
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
               lcurve_path);
}

}  // namespace atomforge::train
