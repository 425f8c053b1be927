#include "model/block_gemm.hpp"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "core/vector_clones.hpp"

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
// C (m x n, ldc) = beta C + a b^T for a column a (element stride sa) and a row b (stride sb).
template <typename T>
ATOMFORGE_VECTOR_CLONES void outer_product(int64_t m, int64_t n, const T* a, int64_t sa, const T* b, int64_t sb,
                                           T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    const T ai = a[i * sa];
    T* row = c + i * ldc;
    if (beta == T(0))
      for (int64_t j = 0; j < n; ++j) row[j] = ai * b[j * sb];
    else
      for (int64_t j = 0; j < n; ++j) row[j] = beta * row[j] + ai * b[j * sb];
  }
}

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
// none for this case (its generator transposes B only, and takes beta 0 or 1; k 0 is left to the
// BLAS, which scales C by beta).
template <typename T>
bool generated_gemm(bool trans_b, int m, int n, int k, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                    int ldc) {
  if ((beta != T(0) && beta != T(1)) || k == 0) return false;
  const int flags = trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  // Long products in slices of at most kDepth along k, added up: LIBXSMM's kernels run each
  // register block of C over the whole depth, so a slice of A as deep as a fitting layer's input
  // (1600) falls out of L2 between blocks (90 against 115 GFLOP/s per core for 128 x 120 x 1600).
  constexpr int kDepth = 256;
  const int slices = (k + kDepth - 1) / kDepth, depth = (k + slices - 1) / slices;
  const T one = 1;
  for (int k0 = 0; k0 < k; k0 += depth) {
    const int kk = std::min(depth, k - k0);
    const T* beta_here = k0 == 0 ? &beta : &one;
    const auto kernel = dispatch(m, n, kk, &lda, &ldb, &ldc, beta_here, &flags);  // cached by LIBXSMM
    if (kernel == nullptr) {
      if (k0 == 0) return false;
      fail("block_gemm: LIBXSMM gave a kernel for the first slice of a product and not for the next");
    }
    kernel(a + static_cast<int64_t>(k0) * lda, b + (trans_b ? static_cast<int64_t>(k0) * ldb : k0), c);
  }
  return true;
}
#endif

}  // namespace

template <typename T>
void transpose_into(const T* src, int64_t ld, int64_t rows, int64_t cols, T* out, int64_t ldo) {
  // Eight rows at a time: each column's eight values are written as one run, and the eight rows
  // are read as eight streams (faster than square tiles when src comes from memory).
  constexpr int64_t kRun = 8;
  for (int64_t i0 = 0; i0 < rows; i0 += kRun) {
    const int64_t i1 = std::min(rows, i0 + kRun);
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t i = i0; i < i1; ++i) out[j * ldo + i] = src[i * ld + j];
  }
}

template void transpose_into<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t);
template void transpose_into<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t);

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
  if (k == 1) {  // an outer product (an embedding net's first layer): no kernel's loop nest is as short
    outer_product(m, n, a, trans_a ? 1 : lda, b, trans_b ? ldb : 1, beta, c, ldc);
    return;
  }
  const T* b_rows = b;
  int64_t ld_rows = ldb;
  if (trans_b) {
    // LIBXSMM has no kernel for this operand transposed: a row-major copy of op(B) costs k n
    // moves against the product's m k n multiply-adds, and its kernels run these shapes at twice
    // OpenBLAS' Haswell ones (the large case, a weight's transpose, is copied by dense_mm).
    thread_local std::vector<T> copy;
    if (copy.size() < static_cast<std::size_t>(k * n)) copy.resize(static_cast<std::size_t>(k * n));
    transpose_into(b, ldb, n, k, copy.data(), n);
    b_rows = copy.data();
    ld_rows = n;
  }
  // Wide products in slices of columns: a slice of op(B) k deep stays in L2 while every row of
  // A passes it (a force pass's 128 x 1600 x 240: 85 against 100-115 GFLOP/s whole).
  constexpr int64_t kColumns = 256;
  const int64_t slices = (n + kColumns - 1) / kColumns, width = (n + slices - 1) / slices;
  bool generated = true;
  for (int64_t j0 = 0; j0 < n && generated; j0 += width) {
    const int wi = as_int(std::min(width, n - j0));
    generated = generated_gemm(trans_a, wi, mi, ki, b_rows + j0, as_int(ld_rows), a, la, beta, c + j0, lc);
    if (!generated && j0 > 0) fail("block_gemm: LIBXSMM gave a kernel for a product's first columns, not the next");
  }
  if (generated) return;
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
