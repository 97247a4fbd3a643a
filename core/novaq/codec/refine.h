#pragma once
// Teacher-guided refinement of one quantized matrix for its layer's output: with the
// codes fixed, the codebooks and the per-row scale and offset that minimize
//   ||X W^T - X What^T||^2 = tr((W - What) H (W - What)^T),   H = X^T X (damped),
// where X holds the layer's inputs on calibration text. What is linear in the codebook
// entries (for fixed codes and row scales) and in each row's (scale, offset) pair, so the
// fit alternates a conjugate-gradient solve of the codebooks' normal equations (matrix-free:
// decode, multiply by H, scatter back onto the entries the codes use) and a 2 x 2 solve per
// row. Never returns a matrix worse than it was given on this objective (f16 rounding
// included): it keeps the input when the fit does not help.

#include "novaq/codec/quantized_tensor.h"

#include <Eigen/Core>

#include <span>

namespace novaq {

using HessianMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// tr((W - What) H (W - What)^T) / tr(W H W^T): the relative output error (0 when exact).
double outputError(const QuantizedTensor& q, std::span<const float> W, const HessianMatrix& H);

struct RefineResult {
    double before = 0; // relative output error of the input
    double after = 0;  // of the result (equal to before when the input was kept)
};

struct RefineOptions {
    int rounds = 3;        // codebook solve + row solve, alternated
    int cgIterations = 16; // conjugate-gradient steps per codebook solve, at most
    // A codebook solve (Jacobi-preconditioned, warm-started from the current codebooks) stops
    // after a step that lowers the output error by less than this fraction of the error before
    // the refit: the later steps and rounds then cost far less than the fixed count did.
    double cgTolerance = 1e-3;
};

RefineResult refineForOutput(QuantizedTensor& q, std::span<const float> W, const HessianMatrix& H,
                             const RefineOptions& options = {});

} // namespace novaq
