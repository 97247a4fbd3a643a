#include "novaq/tensor/dense.h"

#include "novaq/io/cpu.h"

namespace novaq::dense {

// The three builds (dense_variant.inc), declared here by hand: their own file includes Eigen
// under another name, so no header can be shared with them.
#define NOVAQ_DENSE_DECLARE(ns)                                                                                        \
    namespace ns {                                                                                                     \
    void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,  \
              int64_t ldb, float* C, int64_t ldc, bool accumulate);                                                    \
    void gemv(int64_t m, int64_t k, const float* A, int64_t lda, const float* x, float* y);                            \
    bool cholesky(double* A, int64_t n, int64_t lda);                                                                  \
    void choleskySolve(const double* L, int64_t n, int64_t ldl, double* B, int64_t m, int64_t ldb);                    \
    }
NOVAQ_DENSE_DECLARE(generic)
NOVAQ_DENSE_DECLARE(avx2)
NOVAQ_DENSE_DECLARE(avx512)
#undef NOVAQ_DENSE_DECLARE

namespace {

enum class Level { Generic, Avx2, Avx512 };

Level current() noexcept
{
    if (cpuHas(CpuFeature::Avx512))
        return Level::Avx512;
    if (cpuHas(CpuFeature::Avx2))
        return Level::Avx2;
    return Level::Generic;
}

} // namespace

void gemm(Op opA, Op opB, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B, int64_t ldb,
          float* C, int64_t ldc, bool accumulate)
{
    const bool ta = opA == Op::T, tb = opB == Op::T;
    switch (current()) {
    case Level::Avx512:
        return avx512::gemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    case Level::Avx2:
        return avx2::gemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    case Level::Generic:
        break;
    }
    generic::gemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

void gemv(int64_t m, int64_t k, const float* A, int64_t lda, const float* x, float* y)
{
    switch (current()) {
    case Level::Avx512:
        return avx512::gemv(m, k, A, lda, x, y);
    case Level::Avx2:
        return avx2::gemv(m, k, A, lda, x, y);
    case Level::Generic:
        break;
    }
    generic::gemv(m, k, A, lda, x, y);
}

bool cholesky(double* A, int64_t n, int64_t lda)
{
    switch (current()) {
    case Level::Avx512:
        return avx512::cholesky(A, n, lda);
    case Level::Avx2:
        return avx2::cholesky(A, n, lda);
    case Level::Generic:
        break;
    }
    return generic::cholesky(A, n, lda);
}

void choleskySolve(const double* L, int64_t n, int64_t ldl, double* B, int64_t m, int64_t ldb)
{
    switch (current()) {
    case Level::Avx512:
        return avx512::choleskySolve(L, n, ldl, B, m, ldb);
    case Level::Avx2:
        return avx2::choleskySolve(L, n, ldl, B, m, ldb);
    case Level::Generic:
        break;
    }
    generic::choleskySolve(L, n, ldl, B, m, ldb);
}

const char* level() noexcept
{
    switch (current()) {
    case Level::Avx512:
        return "avx512";
    case Level::Avx2:
        return "avx2";
    case Level::Generic:
        break;
    }
    return "generic";
}

} // namespace novaq::dense
