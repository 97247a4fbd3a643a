#pragma once
// Dense float products and the Cholesky solve for the heavy linear algebra of calibration
// (teacher and student forward passes, H = X^T X and C = X_t^T X_s, the teacher-target solve,
// the refit's Hessian products) and the runtime's dense matrices: Eigen's kernels, built three
// times (plain x86-64, AVX2 with FMA, AVX-512) and chosen by the CPU at run time. The rest of
// the engine is built for plain x86-64 (SSE2), where Eigen's products run at a fifth of the
// AVX-512 rate (measured: 25 against 124 GFLOPS per core for a 256 x 2048 x 5632 product).
//
// Every call runs on the calling thread (callers split fixed blocks over TBB, as before), so
// the result does not depend on the thread count. It does depend on the instruction set (FMA
// rounds once): files made with calibration can differ in their last bits between an AVX-512
// and an AVX2 machine; cpuHas() decides, and ForcePortableKernels gives the plain build.
// Matrices are row-major with a leading dimension (the distance between rows, in elements).

#include <cstdint>

namespace novaq::dense {

enum class Op { N, T }; // the matrix as stored, or its transpose

// C (m x n) = op(A) op(B), or C += op(A) op(B) when `accumulate`. op(A) is m x k, op(B) k x n.
void gemm(Op opA, Op opB, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B, int64_t ldb,
          float* C, int64_t ldc, bool accumulate);

// y (m) = A (m x k) x (k).
void gemv(int64_t m, int64_t k, const float* A, int64_t lda, const float* x, float* y);

// The lower Cholesky factor L (A = L L^T) of a symmetric positive definite n x n matrix, in
// place (the strict upper triangle is left as it was). False when A is not positive definite.
bool cholesky(double* A, int64_t n, int64_t lda);

// Solves L L^T X = B in place: B is n x m (m right-hand sides as columns), L from cholesky().
void choleskySolve(const double* L, int64_t n, int64_t ldl, double* B, int64_t m, int64_t ldb);

// Which build the calls above take on this CPU now: "avx512", "avx2" or "generic".
const char* level() noexcept;

} // namespace novaq::dense
