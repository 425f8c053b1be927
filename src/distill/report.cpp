#include "distill/report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "distill/label.hpp"

namespace atomforge::distill {

namespace {

// Sums of squared differences and their counts.
struct SquareSum {
  double sum = 0;
  int64_t count = 0;
  void add(const std::vector<double>& pred, const std::vector<double>& label, double scale) {
    for (std::size_t k = 0; k < label.size(); ++k) {
      const double d = (pred[k] - label[k]) * scale;
      sum += d * d;
    }
    count += static_cast<int64_t>(label.size());
  }
  std::optional<double> rms() const {
    if (count == 0) return std::nullopt;
    return std::sqrt(sum / static_cast<double>(count));
  }
};

config::json optional_json(const std::optional<double>& v) { return v ? config::json(*v) : config::json(nullptr); }

}  // namespace

config::json Accuracy::to_json() const {
  return {{"frames", frames},
          {"energy_rmse_per_atom", optional_json(energy_rmse_per_atom)},
          {"force_rmse", optional_json(force_rmse)},
          {"virial_rmse_per_atom", optional_json(virial_rmse_per_atom)}};
}

Accuracy accuracy(const model::EnergyModel& model, const std::string& head, const std::vector<data::System>& systems,
                  int64_t chunk) {
  SquareSum energy, force, virial;
  Accuracy a;
  for (const auto& system : systems) {
    if (system.nframes == 0) continue;
    const Predictions p = predict(model, head, system, chunk);
    const double per_atom = 1.0 / static_cast<double>(system.natoms());
    if (system.has_energy()) energy.add(p.energy, system.energy, per_atom);
    if (system.has_force()) force.add(p.force, system.force, 1.0);
    if (system.has_virial()) virial.add(p.virial, system.virial, per_atom);
    a.frames += system.nframes;
  }
  a.energy_rmse_per_atom = energy.rms();
  a.force_rmse = force.rms();
  a.virial_rmse_per_atom = virial.rms();
  return a;
}

double force_rms(const std::vector<data::System>& systems) {
  SquareSum s;
  for (const auto& system : systems) s.add(std::vector<double>(system.force.size(), 0.0), system.force, 1.0);
  return s.rms().value_or(0.0);
}

double seconds_per_frame(const model::EnergyModel& model, const std::string& head, const data::System& system,
                         int64_t repeats) {
  const auto once = [&] { model.evaluate(model.prepare(system, {0}), head, false); };
  once();
  std::vector<double> seconds;
  for (int64_t k = 0; k < repeats; ++k) {
    const auto start = std::chrono::steady_clock::now();
    once();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace atomforge::distill
