#include "model/fast_tanh.hpp"

#include "core/vector_clones.hpp"

namespace atomforge::model {

namespace {

template <typename T>
ATOMFORGE_VECTOR_CLONES void bias_tanh(T* z, const T* bias, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    T* row = z + i * cols;
    for (int64_t j = 0; j < cols; ++j) row[j] = tanh_value(row[j] + bias[j]);
  }
}

}  // namespace

void bias_tanh_rows(double* z, const double* bias, int64_t rows, int64_t cols) { bias_tanh(z, bias, rows, cols); }
void bias_tanh_rows(float* z, const float* bias, int64_t rows, int64_t cols) { bias_tanh(z, bias, rows, cols); }

}  // namespace atomforge::model
