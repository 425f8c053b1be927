#include "model/parameters.hpp"

#include <cstring>

#include "core/error.hpp"

namespace atomforge::model {

namespace {

DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return DType::Float32;
    case at::kDouble: return DType::Float64;
    case at::kInt: return DType::Int32;
    case at::kLong: return DType::Int64;
    default: fail("internal: cannot store tensors of type {}", c10::toString(type));
  }
}

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return at::kFloat;
    case DType::Float64: return at::kDouble;
    case DType::Int32: return at::kInt;
    case DType::Int64: return at::kLong;
  }
  return at::kDouble;
}

}  // namespace

int64_t ParameterList::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, tensor] : parameters_) n += tensor->numel();
  return n;
}

void ParameterList::to(at::Device device) {
  for (const auto& [name, tensor] : parameters_) {
    const bool grad = tensor->requires_grad();
    *tensor = tensor->detach().to(device).set_requires_grad(grad);
  }
  for (const auto& [name, tensor] : buffers_) *tensor = tensor->to(device);
}

Blob to_blob(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.detach().to(at::kCPU).contiguous();
  Blob blob;
  blob.dtype = to_dtype(contiguous.scalar_type());
  blob.shape = contiguous.sizes().vec();
  blob.bytes.assign(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes());
  return blob;
}

at::Tensor from_blob(const Blob& blob) {
  at::Tensor out = at::empty(blob.shape, at::TensorOptions().dtype(to_scalar_type(blob.dtype)));
  std::memcpy(out.data_ptr(), blob.bytes.data(), blob.bytes.size());
  return out;
}

void ParameterList::save(TensorFile& file, const std::string& prefix) const {
  for (const auto& [name, tensor] : parameters_) file.blobs[prefix + name] = to_blob(*tensor);
  for (const auto& [name, tensor] : buffers_) file.blobs[prefix + name] = to_blob(*tensor);
}

void ParameterList::load(const TensorFile& file, const std::string& prefix, const std::string& source) {
  auto load_one = [&](const std::string& name, at::Tensor* tensor) {
    auto it = file.blobs.find(prefix + name);
    if (it == file.blobs.end()) fail("{}: missing array '{}'", source, prefix + name);
    at::Tensor value = from_blob(it->second);
    if (value.sizes() != tensor->sizes())
      fail("{}: array '{}' has shape {}, the model expects {}", source, prefix + name,
           c10::str(value.sizes()), c10::str(tensor->sizes()));
    const bool grad = tensor->requires_grad();
    *tensor = value.to(tensor->device(), tensor->scalar_type()).set_requires_grad(grad);
  };
  for (const auto& [name, tensor] : parameters_) load_one(name, tensor);
  for (const auto& [name, tensor] : buffers_) load_one(name, tensor);
}

}  // namespace atomforge::model
