#pragma once
// Teacher targets for calibrated compression: the weights W* that best map the compressed
// model's inputs X_s to the original layer's outputs X_t W^T, anchored to W:
//   W* = argmin ||X_t W^T - X_s W*^T||^2 / n + delta ||W* - W||^2 = W (C + delta I) H^-1,
// with C = X_t^T X_s / n and H = X_s^T X_s / n + delta I (calibrate.h: H comes damped, and
// delta is that damping). The anchor keeps W* = W in the directions the calibration inputs
// never excite: without it W* is zero there, which with fewer tokens than the layer's width
// throws away a large part of the weights.
//
// The map M = (C + delta I) H^-1 (one Cholesky factorization of H, in double) is kept for the
// next matrix with the same statistics (q, k and v share their input, and gate and up), so
// each block solves once per input; each matrix then costs one product W M.

#include "novaq/codec/refine.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace novaq {

class TeacherTargets {
public:
    // W (rows x cols, row-major) -> W*. H and C are cols x cols; diagH holds the diagonal of
    // H before damping (TensorCalibration::columnImportance). Deterministic at any thread count.
    std::vector<float> solve(std::span<const float> W, int64_t rows, int64_t cols, const HessianMatrix& H,
                             const HessianMatrix& C, std::span<const float> diagH);

    // The same W* from WC = W C (rows x cols) instead of C: W*^T = H^-1 (WC + delta W)^T, rows
    // right-hand sides instead of cols (down_proj: C is ffn x ffn, WC dim x ffn). Not kept:
    // one matrix reads such statistics.
    std::vector<float> solveProducts(std::span<const float> W, int64_t rows, int64_t cols, const HessianMatrix& H,
                                     const HessianMatrix& WC, std::span<const float> diagH);

    int factorizations() const noexcept { return m_factorizations; } // for tests

private:
    std::array<uint64_t, 3> m_key{}; // cols and a 128-bit hash of the statistics m_M was made from
    HessianMatrix m_M;               // (C + delta I) H^-1
    int m_factorizations = 0;
};

} // namespace novaq
