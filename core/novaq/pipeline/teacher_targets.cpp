#include "novaq/pipeline/teacher_targets.h"

#include "novaq/io/error.h"
#include "novaq/tensor/dense.h"

#include <tbb/parallel_for.h>
#include <xxhash.h>

#include <algorithm>
#include <array>

namespace novaq {

namespace {

// delta: what the calibrator added to H's diagonal (the same on every column).
double dampingOf(const HessianMatrix& H, std::span<const float> diagH)
{
    double delta = 0;
    if (!diagH.empty()) {
        const int64_t cols = H.rows();
        for (int64_t j = 0; j < cols; ++j)
            delta += double(H(j, j)) - double(diagH[static_cast<size_t>(j)]);
        delta = std::max(delta / double(cols), 0.0);
    }
    return delta;
}

// The lower Cholesky factor of H in double (cols^2 doubles).
std::vector<double> factorOf(const HessianMatrix& H)
{
    const int64_t cols = H.rows();
    std::vector<double> factor(static_cast<size_t>(cols * cols));
    std::copy_n(H.data(), factor.size(), factor.begin());
    if (!dense::cholesky(factor.data(), cols, cols))
        internalError("the damped input statistics of a " + std::to_string(cols) +
                      "-wide layer are not positive definite");
    return factor;
}

} // namespace

std::vector<float> TeacherTargets::solveProducts(std::span<const float> W, int64_t rows, int64_t cols,
                                                 const HessianMatrix& H, const HessianMatrix& WC,
                                                 std::span<const float> diagH)
{
    if (H.rows() != cols || H.cols() != cols || WC.rows() != rows || WC.cols() != cols ||
        W.size() != static_cast<size_t>(rows * cols) || (!diagH.empty() && diagH.size() != static_cast<size_t>(cols)))
        internalError("teacher-target shapes do not match");
    const double delta = dampingOf(H, diagH);
    const std::vector<double> factor = factorOf(H);
    ++m_factorizations;
    // W*^T = H^-1 (WC + delta W)^T by fixed blocks of W*'s rows, each solved in parallel into its
    // own buffer (cols x 128 doubles): the same bits at any thread count.
    std::vector<float> out(W.size());
    constexpr int64_t kRows = 128;
    tbb::parallel_for(int64_t(0), (rows + kRows - 1) / kRows, [&](int64_t b) {
        const int64_t r0 = b * kRows, nr = std::min(kRows, rows - r0);
        std::vector<double> rhs(static_cast<size_t>(cols * nr));
        for (int64_t i = 0; i < cols; ++i)
            for (int64_t r = 0; r < nr; ++r)
                rhs[static_cast<size_t>(i * nr + r)] =
                    double(WC(r0 + r, i)) + delta * double(W[static_cast<size_t>((r0 + r) * cols + i)]);
        dense::choleskySolve(factor.data(), cols, cols, rhs.data(), nr, nr);
        for (int64_t r = 0; r < nr; ++r)
            for (int64_t i = 0; i < cols; ++i)
                out[static_cast<size_t>((r0 + r) * cols + i)] =
                    static_cast<float>(rhs[static_cast<size_t>(i * nr + r)]);
    });
    return out;
}

std::vector<float> TeacherTargets::solve(std::span<const float> W, int64_t rows, int64_t cols, const HessianMatrix& H,
                                         const HessianMatrix& C, std::span<const float> diagH)
{
    if (H.rows() != cols || H.cols() != cols || C.rows() != cols || C.cols() != cols ||
        W.size() != static_cast<size_t>(rows * cols) || (!diagH.empty() && diagH.size() != static_cast<size_t>(cols)))
        internalError("teacher-target shapes do not match");
    // The statistics are known by a 128-bit hash of their bytes rather than a copy: a copy of
    // H and C is 8 cols^2 bytes (254 MB for a 5632-wide input).
    XXH3_state_t* state = XXH3_createState();
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, H.data(), static_cast<size_t>(H.size()) * sizeof(float));
    XXH3_128bits_update(state, C.data(), static_cast<size_t>(C.size()) * sizeof(float));
    XXH3_128bits_update(state, diagH.data(), diagH.size() * sizeof(float));
    const XXH128_hash_t hash = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    const std::array<uint64_t, 3> key{static_cast<uint64_t>(cols), hash.low64, hash.high64};
    if (m_M.size() == 0 || key != m_key) {
        m_key = key;
        m_M.resize(0, 0);
        const double delta = dampingOf(H, diagH);
        // M = (C + delta I) H^-1 = (H^-1 (C^T + delta I))^T, in double; H is symmetric. The
        // factor and the solves take the CPU's widest build (tensor/dense.h).
        const std::vector<double> factor = factorOf(H); // in place: one cols^2 double
        // The right-hand sides C^T + delta I by fixed blocks of columns, each block solved in
        // parallel into its own buffer and written into M's rows: cols x 128 doubles at a time,
        // not a second cols^2 of them (254 MB for a 5632-wide input).
        m_M.resize(cols, cols);
        constexpr int64_t kColumns = 128;
        tbb::parallel_for(int64_t(0), (cols + kColumns - 1) / kColumns, [&](int64_t b) {
            const int64_t j0 = b * kColumns, nj = std::min(kColumns, cols - j0);
            std::vector<double> rhs(static_cast<size_t>(cols * nj));
            for (int64_t i = 0; i < cols; ++i)
                for (int64_t j = 0; j < nj; ++j)
                    rhs[static_cast<size_t>(i * nj + j)] = double(C(j0 + j, i)) + (i == j0 + j ? delta : 0.0);
            dense::choleskySolve(factor.data(), cols, cols, rhs.data(), nj, nj);
            for (int64_t j = 0; j < nj; ++j)
                for (int64_t i = 0; i < cols; ++i)
                    m_M(j0 + j, i) = static_cast<float>(rhs[static_cast<size_t>(i * nj + j)]);
        });
        ++m_factorizations;
    }
    std::vector<float> out(W.size());
    // W* = W M by fixed blocks of rows in parallel (each block on one thread): the same
    // bits at any thread count.
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (rows + kBlock - 1) / kBlock;
    tbb::parallel_for(int64_t(0), blocks, [&](int64_t b) {
        const int64_t r0 = b * kBlock, nr = std::min(kBlock, rows - r0);
        dense::gemm(dense::Op::N, dense::Op::N, nr, cols, cols, W.data() + r0 * cols, cols, m_M.data(), cols,
                    out.data() + r0 * cols, cols, false);
    });
    return out;
}

} // namespace novaq
