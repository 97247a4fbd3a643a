#pragma once
// What one NOVAQ-quantized tensor is made of, and the table that maps `--bits` to it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace novaq {

// Shape of the code: vectors of d weights, a stage-1 codebook of 2^b1 entries and a stage-2
// codebook of 2^b2 entries (b2 = 0: one stage) per subspace, K contiguous column subspaces.
struct CodecConfig {
    int d = 8;
    int b1 = 8;
    int b2 = 4;
    int subspaces = 4;

    double codeBitsPerWeight() const noexcept { return double(b1 + b2) / d; }
    bool operator==(const CodecConfig&) const = default;
};

// One row of the bits table: `--bits B` means this configuration.
struct BitsPreset {
    double bits;
    int d, b1, b2;
    std::string_view label; // plain words for the GUI ("smallest", "balanced", ...)
};

std::span<const BitsPreset> bitsPresets() noexcept;
// The preset for `bits` (exact match to 1e-9), or nullopt.
std::optional<BitsPreset> presetForBits(double bits) noexcept;
// Checks d, b1, b2 and subspaces; returns an empty string when valid, else what is wrong.
std::string validateConfig(const CodecConfig& config);

// Settings of the encoder. Defaults are the ones `novaq local` uses.
struct CodecParams {
    CodecConfig config;
    uint64_t seed = 20260101;
    int kmeansIterations = 4;      // Lloyd iterations of each stage's k-means (the refits polish after)
    int trainVectors = 32768;      // at most this many vectors per subspace train codebooks
    int refitIterations = 3;       // alternating joint-encode / least-squares refit rounds on those
    int fullRounds = 2;            // then encode-all-vectors / refit rounds (the costly part)
    int beamWidth = 8;             // stage-1 candidates kept when the exact joint search is too wide
    int exactJointLimit = 4096;    // 2^(b1+b2) up to this searches all pairs exactly
    double outlierFraction = 0.01; // at most this fraction of columns get an outlier scale
    double outlierThreshold = 2.5; // a column is an outlier when its RMS > threshold * median RMS

    // Calibration (teacher-guided refinement). Empty: every weight counts the same.
    // columnImportance[j] = mean of x_j^2 over the layer's calibration inputs: column j's
    // error costs that much in the layer's output. The encoder folds importance^(-exponent/2)
    // into the column scale, so the codebooks and codes minimize the importance-weighted error.
    std::span<const float> columnImportance;
    double importanceExponent = 1.0;
    // rowImportance[i] weighs row i's error (e.g. how often an embedding row is used).
    std::span<const float> rowImportance;
};

} // namespace novaq
