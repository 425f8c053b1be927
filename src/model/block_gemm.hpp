#pragma once
// Matrix products on raw pointers for the fused kernels' cache-sized blocks: hundreds of small
// products per training step, where libtorch's mm on tensor views costs twice the BLAS call in
// dispatch and view bookkeeping, and OpenBLAS' packing halves the rate of products this small.
// Goes to LIBXSMM's generated kernels when the build found it (about 45-55 GFLOP/s per core on
// se_e2_a's shapes, against OpenBLAS' 15-30), else to the system BLAS (the library libtorch
// itself loads on Debian), else to libtorch's mm.
#include <cstdint>
#include <optional>

namespace atomforge::model {

// Row-major C (m x n, leading dimension ldc) = op(A) op(B) + beta C, op(A) (m x k) and op(B)
// (k x n); op transposes when trans_a / trans_b. beta 0 ignores C's previous contents. Runs on
// the calling thread only (callers split work among threads themselves).
template <typename T>
void block_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                int64_t ldb, T beta, T* c, int64_t ldc);

// out (cols x rows, leading dimension ldo) = the transpose of src (rows x cols, leading dimension
// ld), on the calling thread.
template <typename T>
void transpose_into(const T* src, int64_t ld, int64_t rows, int64_t cols, T* out, int64_t ldo);

// How a strided matrix (rows x cols, element strides along rows and along columns) is passed to
// block_gemm: row-major with leading dimension ld, or (transposed) the transpose of a row-major
// (cols x rows) one; none for other strides (copy it first).
struct GemmOperand {
  bool transposed;
  int64_t ld;
};
std::optional<GemmOperand> gemm_operand(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);

// Which library block_gemm uses, and its name ("libxsmm", "blas", "libtorch").
enum class GemmBackend { kLibxsmm, kBlas, kLibtorch };
GemmBackend block_gemm_backend();
const char* block_gemm_backend_name();

}  // namespace atomforge::model
