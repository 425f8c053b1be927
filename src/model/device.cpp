#include "model/device.hpp"

#include <optional>

#include <torch/cuda.h>

#include "core/error.hpp"

namespace atomforge::model {

at::Device resolve_device(const std::string& name, const std::string& where, int64_t rank) {
  std::optional<at::Device> device;
  try {
    device = at::Device(name);
  } catch (const c10::Error&) {
  }
  if (!device || (!device->is_cpu() && !device->is_cuda()))
    fail("{}: '{}' is not a device this program runs on (cpu, cuda or cuda:N)", where, name);
  if (device->is_cpu()) return at::kCPU;
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (count == 0)
    fail("{}: '{}' asks for a GPU, but {}", where, name,
         at::hasCUDA() ? "none is visible to this process" : "this LibTorch was built without CUDA (see docs/gpu.md)");
  if (!device->has_index()) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(rank % count));
  if (device->index() >= count) fail("{}: '{}', but this process sees {} GPU(s)", where, name, count);
  return *device;
}

}  // namespace atomforge::model
