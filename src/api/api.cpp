// The C inference API (include/atomforge/atomforge.h) over model::EnergyModel. Every entry point
// catches every exception (atomforge::Error, c10::Error, std::bad_alloc, any std::exception and
// anything else) and turns it into a return code plus a message stored in the handle: nothing
// thrown crosses the C boundary.
#include "atomforge/atomforge.h"

#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "model/energy_model.hpp"

struct af_model {
  std::unique_ptr<atomforge::model::EnergyModel> model;
  std::string head;
  std::vector<std::string> type_names;
  double cutoff = 0.0;
  std::string error;
};

namespace {

// An invalid argument from the caller (AF_ERR_ARGUMENT), as opposed to a failure of the model.
struct ArgumentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The message and code of the exception being handled; call only inside a catch block.
int describe_current_exception(std::string& message, int default_code) noexcept {
  try {
    try {
      throw;
    } catch (const ArgumentError& e) {
      message = e.what();
      return AF_ERR_ARGUMENT;
    } catch (const atomforge::Error& e) {
      message = e.what();
      return default_code;
    } catch (const c10::Error& e) {
      message = e.what_without_backtrace();
      return default_code;
    } catch (const std::bad_alloc&) {
      message = "out of memory";
      return AF_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
      message = e.what();
      return default_code;
    } catch (...) {
      message = "unknown error";
      return AF_ERR_INTERNAL;
    }
  } catch (...) {  // assigning the message itself ran out of memory
    return AF_ERR_OUT_OF_MEMORY;
  }
}

// Runs `body` (returning a code), storing the message of any exception in the handle.
template <typename Body>
int guarded(af_model* handle, int default_code, Body&& body) noexcept {
  try {
    handle->error.clear();
    return body();
  } catch (...) {
    return describe_current_exception(handle->error, default_code);
  }
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU).to(at::kDouble).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

const char* const kNullHandle = "null af_model handle";

}  // namespace

extern "C" {

int af_api_version(void) { return ATOMFORGE_API_VERSION; }

af_model* af_model_load(const char* path, const char* head) {
  af_model* handle = new (std::nothrow) af_model;
  if (handle == nullptr) return nullptr;
  const int code = guarded(handle, AF_ERR_NOT_LOADED, [&] {
    if (path == nullptr) throw ArgumentError("af_model_load: path is NULL");
    const std::string file = path;
    try {
      auto model = atomforge::model::EnergyModel::load(atomforge::load_tensor_file(file), file);
      const std::string wanted = head == nullptr ? "" : head;
      if (wanted.empty()) {
        handle->head = model->only_head();
      } else if (model->has_head(wanted)) {
        handle->head = wanted;
      } else {
        std::string names;
        for (const auto& h : model->heads()) names += (names.empty() ? "" : ", ") + h;
        atomforge::fail("{}: no head '{}' (the model has: {})", file, wanted, names);
      }
      handle->type_names = model->type_map();
      handle->cutoff = model->rcut();
      handle->model = std::move(model);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      // Make sure the message names the file, whatever raised it.
      std::string message;
      describe_current_exception(message, AF_ERR_NOT_LOADED);
      if (message.find(file) == std::string::npos) message = file + ": " + message;
      throw atomforge::Error(message);
    }
    return AF_OK;
  });
  if (code != AF_OK) {
    handle->model.reset();
    handle->head.clear();
    handle->type_names.clear();
    handle->cutoff = 0.0;
    if (handle->error.empty()) handle->error = "cannot load the model";
  }
  return handle;
}

int af_model_ok(const af_model* model) { return model != nullptr && model->model != nullptr ? 1 : 0; }

const char* af_model_error(const af_model* model) {
  if (model == nullptr) return kNullHandle;
  return model->error.c_str();
}

void af_model_free(af_model* model) {
  try {
    delete model;
  } catch (...) {  // destructors of libtorch objects do not throw; belt and braces
  }
}

int af_model_ntypes(const af_model* model) {
  return af_model_ok(model) ? static_cast<int>(model->type_names.size()) : 0;
}

const char* af_model_type_name(const af_model* model, int i) {
  if (!af_model_ok(model) || i < 0 || i >= static_cast<int>(model->type_names.size())) return nullptr;
  return model->type_names[i].c_str();
}

int af_model_type_index(const af_model* model, const char* name) {
  if (!af_model_ok(model) || name == nullptr) return -1;
  for (std::size_t i = 0; i < model->type_names.size(); ++i)
    if (model->type_names[i] == name) return static_cast<int>(i);
  return -1;
}

double af_model_cutoff(const af_model* model) { return af_model_ok(model) ? model->cutoff : 0.0; }

const char* af_model_head(const af_model* model) { return af_model_ok(model) ? model->head.c_str() : ""; }

int af_model_compute(af_model* model, int natoms, const double* coord, const int* types, const double* box,
                     double* energy, double* force, double* virial, double* atom_energy) {
  if (model == nullptr) return AF_ERR_NULL_HANDLE;
  if (model->model == nullptr) {
    // Keep the load error: it says why there is no model.
    if (model->error.rfind("no model loaded", 0) != 0) {
      try {
        model->error = "no model loaded" + (model->error.empty() ? std::string() : ": " + model->error);
      } catch (...) {
      }
    }
    return AF_ERR_NOT_LOADED;
  }
  return guarded(model, AF_ERR_COMPUTE, [&] {
    if (natoms < 1) throw ArgumentError(fmt::format("af_model_compute: natoms is {}, must be at least 1", natoms));
    if (coord == nullptr) throw ArgumentError("af_model_compute: coord is NULL");
    if (types == nullptr) throw ArgumentError("af_model_compute: types is NULL");
    const int ntypes = static_cast<int>(model->type_names.size());
    std::vector<int32_t> type_vector(static_cast<std::size_t>(natoms));
    for (int i = 0; i < natoms; ++i) {
      if (types[i] < 0 || types[i] >= ntypes)
        throw ArgumentError(fmt::format("af_model_compute: atom {} has type {}, the model has types 0..{} ({})", i,
                                        types[i], ntypes - 1, fmt::join(model->type_names, " ")));
      type_vector[i] = types[i];
    }
    for (int k = 0; k < natoms * 3; ++k)
      if (!std::isfinite(coord[k]))
        throw ArgumentError(fmt::format("af_model_compute: coordinate {} of atom {} is not finite", k % 3, k / 3));
    if (box != nullptr) {
      for (int k = 0; k < 9; ++k)
        if (!std::isfinite(box[k])) throw ArgumentError(fmt::format("af_model_compute: box[{}] is not finite", k));
      const double det = box[0] * (box[4] * box[8] - box[5] * box[7]) - box[1] * (box[3] * box[8] - box[5] * box[6]) +
                         box[2] * (box[3] * box[7] - box[4] * box[6]);
      if (!(std::abs(det) > 0.0)) throw ArgumentError("af_model_compute: the box is singular (zero volume)");
    }

    const auto input = model->model->prepare(coord, box, box != nullptr, type_vector, 1);
    const auto prediction = model->model->evaluate(input, model->head, false);
    // Everything is computed before any output is written: a failure leaves the outputs alone.
    const std::vector<double> e = to_vector(prediction.energy), f = to_vector(prediction.force),
                              v = to_vector(prediction.virial), ae = to_vector(prediction.atom_energy);
    const std::size_t n = static_cast<std::size_t>(natoms);
    if (e.size() != 1 || f.size() != 3 * n || v.size() != 9 || ae.size() != n)
      throw atomforge::Error("internal: the model returned arrays of unexpected sizes");
    if (energy != nullptr) *energy = e[0];
    if (force != nullptr) std::copy(f.begin(), f.end(), force);
    if (virial != nullptr) std::copy(v.begin(), v.end(), virial);
    if (atom_energy != nullptr) std::copy(ae.begin(), ae.end(), atom_energy);
    return AF_OK;
  });
}

}  // extern "C"
