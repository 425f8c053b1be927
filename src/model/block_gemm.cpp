#include "model/block_gemm.hpp"

#include <algorithm>

#include <ATen/ATen.h>

#include "core/error.hpp"

#ifdef ATOMFORGE_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

#ifdef ATOMFORGE_HAVE_BLAS
extern "C" {
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
}
#endif

namespace atomforge::model {

namespace {

#ifdef ATOMFORGE_HAVE_BLAS
void fortran_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                  const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                  const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void fortran_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                  const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                  const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int as_int(int64_t v) {
  if (v > INT32_MAX) fail("matrix dimension {} exceeds the BLAS interface's 32-bit integers", v);
  return static_cast<int>(v);
}
#endif

#ifdef ATOMFORGE_HAVE_LIBXSMM
libxsmm_dmmfunction dispatch(int m, int n, int k, const int* lda, const int* ldb, const int* ldc, const double* beta,
                             const int* flags) {
  const double one = 1;
  return libxsmm_dmmdispatch(m, n, k, lda, ldb, ldc, &one, beta, flags, nullptr);
}
libxsmm_smmfunction dispatch(int m, int n, int k, const int* lda, const int* ldb, const int* ldc, const float* beta,
                             const int* flags) {
  const float one = 1;
  return libxsmm_smmdispatch(m, n, k, lda, ldb, ldc, &one, beta, flags, nullptr);
}

// Column-major C (m x n) = A op(B) + beta C through a generated kernel; false when LIBXSMM has
// none for this case (its generator transposes B only, and takes beta 0 or 1).
template <typename T>
bool generated_gemm(bool trans_b, int m, int n, int k, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                    int ldc) {
  if (beta != T(0) && beta != T(1)) return false;
  const int flags = trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const auto kernel = dispatch(m, n, k, &lda, &ldb, &ldc, &beta, &flags);  // cached by LIBXSMM after the first call
  if (kernel == nullptr) return false;
  kernel(a, b, c);
  return true;
}
#endif

}  // namespace

std::optional<GemmOperand> gemm_operand(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if (col_stride == 1 && row_stride >= std::max<int64_t>(1, cols)) return GemmOperand{false, row_stride};
  if (row_stride == 1 && col_stride >= std::max<int64_t>(1, rows)) return GemmOperand{true, col_stride};
  return std::nullopt;
}

GemmBackend block_gemm_backend() {
#if defined(ATOMFORGE_HAVE_LIBXSMM)
  return GemmBackend::kLibxsmm;
#elif defined(ATOMFORGE_HAVE_BLAS)
  return GemmBackend::kBlas;
#else
  return GemmBackend::kLibtorch;
#endif
}

const char* block_gemm_backend_name() {
  switch (block_gemm_backend()) {
    case GemmBackend::kLibxsmm: return "libxsmm";
    case GemmBackend::kBlas: return "blas";
    case GemmBackend::kLibtorch: break;
  }
  return "libtorch";
}

template <typename T>
void block_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
#ifdef ATOMFORGE_HAVE_BLAS
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap, the
  // flags stay.
  const int mi = as_int(m), ni = as_int(n), ki = as_int(k), la = as_int(lda), lb = as_int(ldb), lc = as_int(ldc);
#ifdef ATOMFORGE_HAVE_LIBXSMM
  if (!trans_b && generated_gemm(trans_a, ni, mi, ki, b, lb, a, la, beta, c, lc)) return;
#endif
  const T one = 1;
  fortran_gemm(trans_b ? "T" : "N", trans_a ? "T" : "N", &ni, &mi, &ki, &one, b, &lb, a, &la, &beta, c, &lc);
#else
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  auto view = [&](const T* p, int64_t rows, int64_t cols, int64_t ld, bool transposed) {
    const at::Tensor t = at::from_blob(const_cast<T*>(p), {transposed ? cols : rows, transposed ? rows : cols},
                                       {ld, 1}, options);
    return transposed ? t.t() : t;
  };
  at::Tensor out = at::from_blob(c, {m, n}, {ldc, 1}, options);
  const at::Tensor product = at::mm(view(a, m, k, lda, trans_a), view(b, k, n, ldb, trans_b));
  if (beta == T(0)) out.copy_(product);
  else out.mul_(beta).add_(product);
#endif
}

template void block_gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*,
                                 int64_t, double, double*, int64_t);
template void block_gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                                float, float*, int64_t);

}  // namespace atomforge::model
