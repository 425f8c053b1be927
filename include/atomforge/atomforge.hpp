// atomforge C++ inference wrapper: header-only, over the C API (atomforge.h), so a program needs
// only -latomforge_c and no libtorch headers. Errors are thrown as atomforge::ApiError.
//
//   atomforge::Model model("model.pt");              // or Model("multi.pt", "head")
//   auto r = model.compute(coord, types, box);       // box empty: no periodic boundary
//   r.energy; r.force; r.virial; r.atom_energy; r.atom_virial;
#ifndef ATOMFORGE_ATOMFORGE_HPP
#define ATOMFORGE_ATOMFORGE_HPP

#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "atomforge/atomforge.h"

namespace atomforge {

// A failure reported by the C API: its code (AF_ERR_*) and message.
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

struct Prediction {
  double energy = 0.0;
  std::vector<double> force;        // natoms x 3
  std::vector<double> virial;       // 9
  std::vector<double> atom_energy;  // natoms
  std::vector<double> atom_virial;  // natoms x 9 (see af_model_compute_atomic)
};

class Model {
 public:
  // Loads `path`; `head` empty for the model's only head. Throws ApiError naming the file.
  explicit Model(const std::string& path, const std::string& head = "")
      : handle_(af_model_load(path.c_str(), head.empty() ? nullptr : head.c_str())) {
    if (handle_ == nullptr) throw std::bad_alloc();
    if (!af_model_ok(handle_)) {
      const ApiError error(AF_ERR_NOT_LOADED, af_model_error(handle_));
      af_model_free(handle_);
      handle_ = nullptr;
      throw error;
    }
  }
  ~Model() { af_model_free(handle_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Model& operator=(Model&& other) noexcept {
    if (this != &other) {
      af_model_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }

  int ntypes() const { return af_model_ntypes(handle_); }
  std::vector<std::string> type_map() const {
    std::vector<std::string> names;
    for (int i = 0; i < ntypes(); ++i) names.emplace_back(af_model_type_name(handle_, i));
    return names;
  }
  // Index of the element `name` in the type map; throws when the model has no such type.
  int type_index(const std::string& name) const {
    const int i = af_model_type_index(handle_, name.c_str());
    if (i < 0) throw ApiError(AF_ERR_ARGUMENT, "the model has no type '" + name + "'");
    return i;
  }
  double cutoff() const { return af_model_cutoff(handle_); }
  std::string head() const { return af_model_head(handle_); }
  // "cpu", "cuda" or "cuda:N": where later computations run. Throws ApiError.
  void set_device(const std::string& device) {
    const int code = af_model_set_device(handle_, device.c_str());
    if (code != AF_OK) throw ApiError(code, af_model_error(handle_));
  }
  af_model* handle() const noexcept { return handle_; }

  // One frame: coord natoms x 3, types natoms (indices into type_map()), box 9 values or empty
  // for no periodic boundary. Throws ApiError.
  Prediction compute(const std::vector<double>& coord, const std::vector<int>& types,
                 const std::vector<double>& box = {}) const {
    if (handle_ == nullptr) throw ApiError(AF_ERR_NULL_HANDLE, "moved-from atomforge::Model");
    if (coord.size() != 3 * types.size())
      throw ApiError(AF_ERR_ARGUMENT, "coord has " + std::to_string(coord.size()) + " values for " +
                                          std::to_string(types.size()) + " atoms (expected natoms x 3)");
    if (!box.empty() && box.size() != 9)
      throw ApiError(AF_ERR_ARGUMENT, "box has " + std::to_string(box.size()) + " values, expected 9 or none");
    const int natoms = static_cast<int>(types.size());
    Prediction r;
    r.force.resize(coord.size());
    r.virial.resize(9);
    r.atom_energy.resize(types.size());
    r.atom_virial.resize(9 * types.size());
    const int code = af_model_compute_atomic(handle_, natoms, coord.data(), types.data(),
                                             box.empty() ? nullptr : box.data(), &r.energy, r.force.data(),
                                             r.virial.data(), r.atom_energy.data(), r.atom_virial.data());
    if (code != AF_OK) throw ApiError(code, af_model_error(handle_));
    return r;
  }

 private:
  af_model* handle_ = nullptr;
};

}  // namespace atomforge

#endif  // ATOMFORGE_ATOMFORGE_HPP
