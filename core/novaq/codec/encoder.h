#pragma once
// The NOVAQ codec's three verbs for one matrix: train (codebooks), encode (codes), decode
// (quantized_tensor.h). Stages: normalization (row mean and scale, outlier-column scale),
// two-stage residual product quantization trained by k-means++ / Lloyd on a subsample,
// joint encoding of both stages (exact over all pairs when 2^(b1+b2) is small, a beam
// otherwise), then alternating least-squares refits of the codebooks for the codes and of
// the row scales, each followed by re-encoding.

#include "novaq/codec/codec_config.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/io/cancel.h"

#include <functional>
#include <span>
#include <vector>

namespace novaq {

// Per-stage figures, recorded for charts and tests.
struct EncodeStats {
    std::vector<double> kmeansObjective1; // stage-1 k-means mean squared error per iteration
    std::vector<double> kmeansObjective2; // stage-2
    std::vector<double> refitError;       // normalized-domain relative error after each refit round
    int outlierColumns = 0;
};

// Progress within one tensor, 0..1, with the current stage name; may be null.
using EncodeProgress = std::function<void(double fraction, const char* stage)>;

// Quantizes W (rows x cols, row-major). Deterministic for the same input and params at any
// thread count. Throws Error(Cancelled) when `cancel` is set.
QuantizedTensor encodeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params,
                             const CancelToken* cancel = nullptr, const EncodeProgress& progress = {},
                             EncodeStats* stats = nullptr);

// ||W - What||^2 / ||W||^2 in double precision (0 when W is all zero and What equals it).
double relativeError(std::span<const float> W, std::span<const float> What);
double sqnrDb(double relError);

} // namespace novaq
