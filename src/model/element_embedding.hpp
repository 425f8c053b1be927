#pragma once
// A learned vector per element, indexed by atomic number rather than by position in the type
// map: one trunk covers any element set, and a trunk pre-trained on some elements already has
// (untrained) rows for the others when fine-tuned on new data.
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/parameters.hpp"

namespace atomforge::model {

class ElementEmbedding {
 public:
  ElementEmbedding() = default;
  ElementEmbedding(const std::vector<std::string>& type_map, int64_t width, at::ScalarType dtype,
                   at::Generator& generator);
  // (natoms, width) rows for atoms of model types `atype`.
  at::Tensor forward(const at::Tensor& atype) const;
  void register_into(ParameterList& list, const std::string& prefix);

 private:
  at::Tensor table_;          // (kMaxAtomicNumber + 1, width); row 0 unused
  at::Tensor number_of_type_; // (ntypes) atomic number of each type, from the type map
};

}  // namespace atomforge::model
