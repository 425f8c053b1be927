#include "train/data_config.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/load_systems.hpp"

namespace atomforge::train {

namespace fs = std::filesystem;

data::DataSet load_dataset(const nlohmann::ordered_json& config, const std::string& base_dir,
                           const std::vector<std::string>& type_map, uint64_t seed, const std::string& key_path) {
  std::vector<std::string> roots;
  if (config.at("systems").is_string()) {
    roots.push_back(config.at("systems").get<std::string>());
  } else {
    roots = config.at("systems").get<std::vector<std::string>>();
  }
  if (roots.empty()) fail("{}.systems is empty", key_path);
  std::vector<data::System> systems;
  for (const auto& root : roots) {
    const fs::path path = fs::path(root).is_absolute() ? fs::path(root) : fs::path(base_dir) / root;
    if (!fs::exists(path)) fail("{}.systems: system folder '{}' does not exist", key_path, path.string());
    for (auto& system : data::load_systems(path.lexically_normal().string())) {
      data::map_types(system, type_map);  // unknown elements fail here, naming the system
      systems.push_back(std::move(system));
    }
  }
  std::vector<double> sys_probs;
  if (config.contains("sys_probs")) sys_probs = config.at("sys_probs").get<std::vector<double>>();
  try {
    auto batch_sizes = data::DataSet::resolve_batch_sizes(config.at("batch_size"), systems);
    auto probabilities =
        data::DataSet::resolve_probabilities(config.at("auto_prob").get<std::string>(), sys_probs, systems);
    return data::DataSet(std::move(systems), std::move(batch_sizes), std::move(probabilities), seed);
  } catch (...) {
    rethrow_with_context(key_path);
  }
}

}  // namespace atomforge::train
