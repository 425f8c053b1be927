#include "model/element_embedding.hpp"

#include "core/elements.hpp"

namespace atomforge::model {

ElementEmbedding::ElementEmbedding(const std::vector<std::string>& type_map, int64_t width, at::ScalarType dtype,
                                   at::Generator& generator) {
  table_ = at::normal(0.0, 1.0, {kMaxAtomicNumber + 1, width}, generator, at::TensorOptions().dtype(at::kDouble))
               .to(dtype)
               .set_requires_grad(true);
  std::vector<int64_t> numbers;
  for (const auto& symbol : type_map) numbers.push_back(atomic_number(symbol, "model.type_map"));
  number_of_type_ = at::tensor(numbers, at::kLong);
}

at::Tensor ElementEmbedding::forward(const at::Tensor& atype) const {
  // The type -> element table stays on the host (it is not a parameter); its rows go where the types are.
  return table_.index_select(0, number_of_type_.to(atype.device()).index_select(0, atype));
}

void ElementEmbedding::register_into(ParameterList& list, const std::string& prefix) {
  list.add_parameter(prefix + "table", &table_);
}

}  // namespace atomforge::model
