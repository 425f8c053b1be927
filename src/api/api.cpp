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
#include "model/device.hpp"
#include "model/energy_model.hpp"
#include "model/ghost_exchange.hpp"
#include "model/huge_page_allocator.hpp"

struct af_model {
  std::unique_ptr<atomforge::model::EnergyModel> model;
  std::string head;
  std::vector<std::string> type_names;
  double cutoff = 0.0;
  double receptive_field = 0.0;
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

// AF_OK when the handle holds a model, else the code (keeping the load error as the reason).
int check_loaded(af_model* model) noexcept {
  if (model == nullptr) return AF_ERR_NULL_HANDLE;
  if (model->model != nullptr) return AF_OK;
  if (model->error.rfind("no model loaded", 0) != 0) {
    try {
      model->error = "no model loaded" + (model->error.empty() ? std::string() : ": " + model->error);
    } catch (...) {
    }
  }
  return AF_ERR_NOT_LOADED;
}

// The atoms' types as model types, after checking them and the coordinates (`fn` names the caller).
std::vector<int32_t> checked_atoms(const af_model& model, const char* fn, int natoms, const double* coord,
                                   const int* types) {
  if (natoms > 0 && coord == nullptr) throw ArgumentError(fmt::format("{}: coord is NULL", fn));
  if (natoms > 0 && types == nullptr) throw ArgumentError(fmt::format("{}: types is NULL", fn));
  const int ntypes = static_cast<int>(model.type_names.size());
  std::vector<int32_t> type_vector(static_cast<std::size_t>(natoms));
  for (int i = 0; i < natoms; ++i) {
    if (types[i] < 0 || types[i] >= ntypes)
      throw ArgumentError(fmt::format("{}: atom {} has type {}, the model has types 0..{} ({})", fn, i, types[i],
                                      ntypes - 1, fmt::join(model.type_names, " ")));
    type_vector[i] = types[i];
  }
  for (int k = 0; k < natoms * 3; ++k)
    if (!std::isfinite(coord[k]))
      throw ArgumentError(fmt::format("{}: coordinate {} of atom {} is not finite", fn, k % 3, k / 3));
  return type_vector;
}

void check_box(const char* fn, const double* box) {
  for (int k = 0; k < 9; ++k)
    if (!std::isfinite(box[k])) throw ArgumentError(fmt::format("{}: box[{}] is not finite", fn, k));
  const double det = box[0] * (box[4] * box[8] - box[5] * box[7]) - box[1] * (box[3] * box[8] - box[5] * box[6]) +
                     box[2] * (box[3] * box[7] - box[4] * box[6]);
  if (!(std::abs(det) > 0.0)) throw ArgumentError(fmt::format("{}: the box is singular (zero volume)", fn));
}

// The caller's output arrays; NULL ones are not wanted.
struct Outputs {
  double* energy = nullptr;
  double* force = nullptr;
  double* virial = nullptr;
  double* atom_energy = nullptr;
  double* atom_virial = nullptr;
};

void write_outputs(const Outputs& out, const std::vector<double>& e, const std::vector<double>& f,
                   const std::vector<double>& v, const std::vector<double>& ae, const std::vector<double>& av) {
  if (out.energy != nullptr) *out.energy = e[0];
  if (out.force != nullptr) std::copy(f.begin(), f.end(), out.force);
  if (out.virial != nullptr) std::copy(v.begin(), v.end(), out.virial);
  if (out.atom_energy != nullptr) std::copy(ae.begin(), ae.end(), out.atom_energy);
  if (out.atom_virial != nullptr) std::copy(av.begin(), av.end(), out.atom_virial);
}

// Everything is converted before any output is written: a failure leaves the outputs alone.
int write_prediction(const atomforge::model::Prediction& p, int nall, int nlocal, const Outputs& out) {
  const std::vector<double> e = to_vector(p.energy), f = to_vector(p.force), v = to_vector(p.virial),
                            ae = to_vector(p.atom_energy),
                            av = out.atom_virial != nullptr ? to_vector(p.atom_virial) : std::vector<double>{};
  const std::size_t n = static_cast<std::size_t>(nall);
  if (e.size() != 1 || f.size() != 3 * n || v.size() != 9 || ae.size() != static_cast<std::size_t>(nlocal) ||
      (out.atom_virial != nullptr && av.size() != 9 * n))
    throw atomforge::Error("internal: the model returned arrays of unexpected sizes");
  write_outputs(out, e, f, v, ae, av);
  return AF_OK;
}

// af_model_compute and af_model_compute_atomic: one frame, periodic when `box` is given.
int compute_frame(af_model* model, const char* fn, int natoms, const double* coord, const int* types,
                  const double* box, const Outputs& out) noexcept {
  if (const int code = check_loaded(model); code != AF_OK) return code;
  return guarded(model, AF_ERR_COMPUTE, [&] {
    if (natoms < 1) throw ArgumentError(fmt::format("{}: natoms is {}, must be at least 1", fn, natoms));
    const std::vector<int32_t> type_vector = checked_atoms(*model, fn, natoms, coord, types);
    if (box != nullptr) check_box(fn, box);
    const auto input = model->model->prepare(coord, box, box != nullptr, type_vector, 1);
    return write_prediction(model->model->evaluate(input, model->head, false), natoms, natoms, out);
  });
}

// The caller's callback as the model's exchange, counting the calls: every domain must make the
// same number of each.
class CallbackExchange : public atomforge::model::GhostExchange {
 public:
  CallbackExchange(af_ghost_exchange_fn fn, void* context) : fn_(fn), context_(context) {}
  void forward(double* rows, int64_t nall, int64_t width) override {
    call(AF_GHOSTS_FORWARD, rows, nall, width);
    ++forward_calls;
  }
  void reverse(double* rows, int64_t nall, int64_t width) override {
    call(AF_GHOSTS_REVERSE, rows, nall, width);
    ++reverse_calls;
  }
  int64_t forward_calls = 0, reverse_calls = 0;

 private:
  void call(int direction, double* rows, int64_t nall, int64_t width) {
    if (fn_(context_, direction, static_cast<int>(nall), static_cast<int>(width), rows) != 0)
      atomforge::fail("the ghost exchange callback failed ({})",
                      direction == AF_GHOSTS_FORWARD ? "forward" : "reverse");
  }
  af_ghost_exchange_fn fn_;
  void* context_;
};

// A domain without owned atoms has no energy and no forces, but still makes its share of the
// exchanges (the same calls, in the same order, as the domains that evaluate the model).
void exchange_without_atoms(CallbackExchange& exchange, int64_t count, int nall, int64_t width) {
  std::vector<double> rows(static_cast<std::size_t>(nall) * static_cast<std::size_t>(width), 0.0);
  for (int64_t k = 0; k < count; ++k) exchange.forward(rows.data(), nall, width);
  for (int64_t k = 0; k < count; ++k) {
    std::fill(rows.begin(), rows.end(), 0.0);
    exchange.reverse(rows.data(), nall, width);
  }
}

void write_no_atoms(const Outputs& out, int nall) {
  write_outputs(out, {0.0}, std::vector<double>(3 * static_cast<std::size_t>(nall), 0.0), std::vector<double>(9, 0.0),
                {}, std::vector<double>(9 * static_cast<std::size_t>(nall), 0.0));
}

void check_domain(const char* fn, int nall, int nlocal) {
  if (nlocal < 0 || nall < nlocal)
    throw ArgumentError(fmt::format("{}: nlocal is {} and nall {}, need 0 <= nlocal <= nall", fn, nlocal, nall));
}

}  // namespace

extern "C" {

int af_api_version(void) { return ATOMFORGE_API_VERSION; }

af_model* af_model_load(const char* path, const char* head) {
  af_model* handle = new (std::nothrow) af_model;
  if (handle == nullptr) return nullptr;
  atomforge::model::map_large_tensors_on_huge_pages();
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
      handle->receptive_field = model->receptive_field();
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
    handle->receptive_field = 0.0;
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

double af_model_receptive_field(const af_model* model) {
  return af_model_ok(model) ? model->receptive_field : 0.0;
}

const char* af_model_head(const af_model* model) { return af_model_ok(model) ? model->head.c_str() : ""; }

int af_model_set_device(af_model* model, const char* device) {
  if (const int code = check_loaded(model); code != AF_OK) return code;
  return guarded(model, AF_ERR_ARGUMENT, [&] {
    if (device == nullptr) throw ArgumentError("af_model_set_device: device is NULL");
    model->model->to(atomforge::model::resolve_device(device, "af_model_set_device"));
    return AF_OK;
  });
}

int af_model_compute(af_model* model, int natoms, const double* coord, const int* types, const double* box,
                     double* energy, double* force, double* virial, double* atom_energy) {
  return compute_frame(model, "af_model_compute", natoms, coord, types, box, {energy, force, virial, atom_energy});
}

int af_model_compute_atomic(af_model* model, int natoms, const double* coord, const int* types, const double* box,
                            double* energy, double* force, double* virial, double* atom_energy,
                            double* atom_virial) {
  return compute_frame(model, "af_model_compute_atomic", natoms, coord, types, box,
                       {energy, force, virial, atom_energy, atom_virial});
}

int af_model_compute_local(af_model* model, int nall, int nlocal, const double* coord, const int* types,
                           double* energy, double* force, double* virial, double* atom_energy,
                           double* atom_virial) {
  if (const int code = check_loaded(model); code != AF_OK) return code;
  return guarded(model, AF_ERR_COMPUTE, [&] {
    const char* fn = "af_model_compute_local";
    check_domain(fn, nall, nlocal);
    const std::vector<int32_t> type_vector = checked_atoms(*model, fn, nall, coord, types);
    const Outputs out{energy, force, virial, atom_energy, atom_virial};
    if (nlocal == 0) {  // a domain may own no atom: no energy, no force
      write_no_atoms(out, nall);
      return AF_OK;
    }
    const auto input = model->model->prepare_local(coord, nlocal, type_vector);
    return write_prediction(model->model->evaluate(input, model->head, false), nall, nlocal, out);
  });
}

int af_model_ghost_exchange_width(const af_model* model) {
  return af_model_ok(model) ? static_cast<int>(model->model->ghost_exchanges().width) : 0;
}

int af_model_compute_exchange(af_model* model, int nall, int nlocal, const double* coord, const int* types,
                              af_ghost_exchange_fn exchange, void* context, double* energy, double* force,
                              double* virial, double* atom_energy, double* atom_virial) {
  if (const int code = check_loaded(model); code != AF_OK) return code;
  return guarded(model, AF_ERR_COMPUTE, [&] {
    const char* fn = "af_model_compute_exchange";
    check_domain(fn, nall, nlocal);
    if (exchange == nullptr) throw ArgumentError(fmt::format("{}: exchange is NULL", fn));
    const auto shape = model->model->ghost_exchanges();
    if (shape.width == 0)
      throw ArgumentError(fmt::format("{}: this model cannot exchange ghost features (af_model_ghost_exchange_width "
                                      "is 0); use af_model_compute_local",
                                      fn));
    const std::vector<int32_t> type_vector = checked_atoms(*model, fn, nall, coord, types);
    const Outputs out{energy, force, virial, atom_energy, atom_virial};
    auto ghosts = std::make_shared<CallbackExchange>(exchange, context);
    if (nlocal == 0) {
      exchange_without_atoms(*ghosts, shape.count, nall, shape.width);
      write_no_atoms(out, nall);
      return AF_OK;
    }
    const auto input = model->model->prepare_exchange(coord, nlocal, type_vector, ghosts);
    const auto prediction = model->model->evaluate(input, model->head, false);
    if (ghosts->forward_calls != shape.count || ghosts->reverse_calls != shape.count)
      throw atomforge::Error(fmt::format("internal: {} forward and {} reverse ghost exchanges, expected {} of each",
                                         ghosts->forward_calls, ghosts->reverse_calls, shape.count));
    return write_prediction(prediction, nall, nlocal, out);
  });
}

}  // extern "C"
