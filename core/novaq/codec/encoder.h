#pragma once
// The NOVAQ codec's verbs for one matrix, in faiss's terms: train (codebooks), compute codes
// (for codebooks held fixed), decode, refit (codebooks for codes held fixed). Stages of
// encodeMatrix, which composes them: normalization (row mean and scale, outlier-column
// scale), two-stage residual product quantization trained by k-means++ / Lloyd on a
// subsample, joint encoding of both stages (exact over all pairs when 2^(b1+b2) is small, a
// beam otherwise), then alternating least-squares refits of the codebooks for the codes and
// of the row scales, each followed by re-encoding. The packed result and its decode are in
// quantized_tensor.h.
//
// Shapes in math names: n vectors of length d (row-major), codebooks C1 (m1 x d) and
// C2 (m2 x d) per subspace, K subspaces.

#include "novaq/codec/codec_config.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/io/cancel.h"
#include "novaq/io/progress.h"

#include <cstdint>
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

// Quantizes W (rows x cols, row-major). Deterministic for the same input and params at any
// thread count. Throws Error(Cancelled) when `cancel` is set. `progress` is told the fraction
// of the tensor done (total 1) and the stage ("normalize", "train", "refit", "encode", "rows",
// "done").
QuantizedTensor encodeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params,
                             const CancelToken* cancel = nullptr, const ProgressFn& progress = {},
                             EncodeStats* stats = nullptr);

// ||W - What||^2 / ||W||^2 in double precision (0 when W is all zero and What equals it).
double relativeError(std::span<const float> W, std::span<const float> What);
double sqnrDb(double relError);

// --- The verbs encodeMatrix is made of ------------------------------------------------------

// splitmix64: a small, portable, seedable generator (the standard library's distributions
// differ between implementations, and files must not). encodeMatrix seeds one with
// CodecParams::seed and draws from it for each subspace in order: the training sample, then
// the stage-1 and stage-2 k-means.
struct SplitMix64 {
    uint64_t state;
    uint64_t next() noexcept
    {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    uint64_t below(uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
};

// The normalized domain of one matrix: x_ij = (w_ij - mu_i) / (s_i * c_j).
struct Normalization {
    std::vector<double> mean;      // mu_i, row mean (double sums)
    std::vector<float> rowMean;    // mu_i in float
    std::vector<float> rowSd;      // s_i, row RMS about the mean (1 for a constant row)
    std::vector<float> colScale;   // c_j (f16 values): outlier scale and importance, else 1
    std::vector<double> colWeight; // h_j, the importance of column j (1 without calibration)
    bool hasColScale = false;      // some c_j is not 1 (the file stores colScale)
    int outlierColumns = 0;
};
Normalization normalizeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params);

// The normalized vectors of subspace k: for each row, the vectors [vb, ve) of that row
// (columns past cols are 0), and each vector's weight s_i^2 * rowImportance_i.
struct SubspaceVectors {
    int64_t vb = 0, ve = 0; // vector positions in a row
    std::vector<float> X;   // n x d, n = rows * (ve - vb), row by row
    std::vector<float> weight;
};
SubspaceVectors gatherSubspace(std::span<const float> W, int64_t rows, int64_t cols, const Normalization& norm,
                               const CodecParams& params, int k);

// The training set of a subspace: at most `count` of its vectors (all of them when there are
// fewer), a seeded sample in ascending order, with their weights.
struct TrainingSet {
    std::vector<float> X; // S x d
    std::vector<float> weight;
};
TrainingSet sampleTrainingSet(const SubspaceVectors& sub, int d, int64_t count, SplitMix64& rng);

// Both stages' codebooks of one subspace; m2 == 0: one stage (c2 empty).
struct Codebooks {
    int d = 0, m1 = 0, m2 = 0;
    std::vector<float> c1; // m1 x d
    std::vector<float> c2; // m2 x d
};
// Codes of n vectors: stage-1 entry a[i], stage-2 entry b[i] (0 with one stage).
struct Codes {
    std::vector<uint32_t> a, b;
};

// Train: k-means++ seeding and `iterations` Lloyd steps for stage 1 on X (n x d), then the
// same for stage 2 on the residuals from each vector's nearest stage-1 entry. Empty clusters
// are repaired deterministically. Records each step's objective in stats when given.
Codebooks trainCodebooks(std::span<const float> X, int d, int m1, int m2, int iterations, SplitMix64& rng,
                         const CancelToken* cancel = nullptr, EncodeStats* stats = nullptr);

// The beam encodeMatrix uses: 0 (exact search over all pairs) when m1 * m2 <= exactJointLimit.
int jointBeam(const CodecParams& params, int m1, int m2) noexcept;

// Compute codes for fixed codebooks: for each vector of X the pair (a, b) minimizing
// ||x - C1[a] - C2[b]||^2, over all pairs when beam <= 0 (see kernels::encodeJoint).
Codes computeCodes(const Codebooks& books, std::span<const float> X, int beam);

// Decode: the n x d vectors C1[a[i]] + C2[b[i]].
std::vector<float> decodeCodes(const Codebooks& books, const Codes& codes);

// Refit for fixed codes: the codebooks minimizing sum_i w_i ||x_i - C1[a_i] - C2[b_i]||^2
// (+ a small pull towards the current entries, which keeps unused entries where they are).
// It does not raise that error (float rounding aside). An empty weight counts every vector once.
void refitCodebooks(Codebooks& books, std::span<const float> X, std::span<const float> weight, const Codes& codes);

// sum_i ||x_i - C1[a_i] - C2[b_i]||^2 / sum_i ||x_i||^2 (0 when X is all zero).
double codesError(const Codebooks& books, std::span<const float> X, const Codes& codes);

// Pack: the stored tensor for per-subspace codebooks (stored as f16) and codes (in the
// order of gatherSubspace), with each row's scale and offset refitted by least squares
// for them (importance-weighted by colWeight).
QuantizedTensor packTensor(std::span<const float> W, int64_t rows, int64_t cols, const CodecConfig& config,
                           const Normalization& norm, const std::vector<Codebooks>& books,
                           const std::vector<Codes>& codes);

} // namespace novaq
