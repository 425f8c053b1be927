#include "cli/model_file.hpp"

#include "core/error.hpp"
#include "data/load_systems.hpp"

namespace atomforge::cli {

std::string head_list(const model::EnergyModel& model) {
  std::string list;
  for (const auto& head : model.heads()) list += (list.empty() ? "" : ", ") + head;
  return list;
}

std::string choose_head(const model::EnergyModel& model, const std::string& requested, const std::string& source,
                        const std::string& option) {
  if (!requested.empty()) {
    if (!model.has_head(requested)) fail("{}: no head '{}' (heads: {})", source, requested, head_list(model));
    return requested;
  }
  if (model.heads().size() != 1)
    fail("{}: a multi-task model with {} heads ({}): choose one with {}", source, model.heads().size(),
         head_list(model), option);
  return model.heads().front();
}

std::string file_kind(const TensorFile& file) {
  const std::string kind = file.meta.value("kind", std::string{});
  if (kind == "atomforge-checkpoint") return "checkpoint";
  if (kind == "atomforge-energy-model") return "model";
  return kind.empty() ? "unknown" : kind;
}

std::vector<data::System> load_all_systems(const std::vector<std::string>& paths) {
  std::vector<data::System> systems;
  for (const auto& root : paths)
    for (auto& system : data::load_systems(root)) systems.push_back(std::move(system));
  if (systems.empty()) {
    std::string list;
    for (const auto& root : paths) list += (list.empty() ? "" : ", ") + root;
    fail("no systems found under {}", list);
  }
  return systems;
}

}  // namespace atomforge::cli
