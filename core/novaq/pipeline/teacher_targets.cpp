#include "novaq/pipeline/teacher_targets.h"

#include "novaq/io/error.h"

#include <Eigen/Cholesky>
#include <tbb/parallel_for.h>

#include <algorithm>

namespace novaq {

std::vector<float> TeacherTargets::solve(std::span<const float> W, int64_t rows, int64_t cols, const HessianMatrix& H,
                                         const HessianMatrix& C, std::span<const float> diagH)
{
    if (H.rows() != cols || H.cols() != cols || C.rows() != cols || C.cols() != cols ||
        W.size() != static_cast<size_t>(rows * cols) || (!diagH.empty() && diagH.size() != static_cast<size_t>(cols)))
        internalError("teacher-target shapes do not match");
    if (m_H.rows() != H.rows() || m_H.cols() != H.cols() || !std::equal(H.data(), H.data() + H.size(), m_H.data()) ||
        m_C.rows() != C.rows() || m_C.cols() != C.cols() || !std::equal(C.data(), C.data() + C.size(), m_C.data()) ||
        !std::equal(diagH.begin(), diagH.end(), m_diag.begin(), m_diag.end())) {
        m_H = H;
        m_C = C;
        m_diag.assign(diagH.begin(), diagH.end());
        // delta: what the calibrator added to the diagonal (the same on every column).
        double delta = 0;
        if (!diagH.empty()) {
            for (int64_t j = 0; j < cols; ++j)
                delta += double(H(j, j)) - double(diagH[static_cast<size_t>(j)]);
            delta = std::max(delta / double(cols), 0.0);
        }
        // M = (C + delta I) H^-1 = (H^-1 (C^T + delta I))^T, in double; H is symmetric.
        const Eigen::LLT<Eigen::MatrixXd> llt(H.cast<double>());
        Eigen::MatrixXd rhs = C.cast<double>().transpose();
        rhs.diagonal().array() += delta;
        constexpr int64_t kColumns = 128; // fixed blocks of right-hand sides, solved in parallel
        tbb::parallel_for(int64_t(0), (cols + kColumns - 1) / kColumns, [&](int64_t b) {
            auto block = rhs.middleCols(b * kColumns, std::min(kColumns, cols - b * kColumns));
            llt.solveInPlace(block);
        });
        m_M = rhs.transpose().cast<float>();
        ++m_factorizations;
    }
    std::vector<float> out(W.size());
    // W* = W M by fixed blocks of rows in parallel (Eigen runs one thread here): the same
    // bits at any thread count.
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (rows + kBlock - 1) / kBlock;
    tbb::parallel_for(int64_t(0), blocks, [&](int64_t b) {
        const int64_t r0 = b * kBlock, nr = std::min(kBlock, rows - r0);
        Eigen::Map<HessianMatrix>(out.data() + r0 * cols, nr, cols).noalias() =
            Eigen::Map<const HessianMatrix>(W.data() + r0 * cols, nr, cols) * m_M;
    });
    return out;
}

} // namespace novaq
