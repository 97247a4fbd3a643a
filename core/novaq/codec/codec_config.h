#pragma once
// What one NOVAQ-quantized tensor is made of, and the table that maps `--bits` to it.

#include <array>
#include <cstddef>
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

// The one set of limits of the codec's fields. validateConfig, CodecSpec (codec_spec.h), the
// manifest reader, the CLI's --d/--b1/--b2/--subspaces and the app's spin boxes all read them.
// Why these: they are the validator's, which the encoder, the payload decoder and the runtime's
// QuantizedLinear have always enforced, so every .novaq file ever written or read lies inside
// them; the manifest reader's wider first checks (d up to 1024, b up to 16, 2^20 subspaces) and
// the CLI's (d up to 1024, b up to 64) admitted nothing more, only named another range. The
// codec's tests sweep this range. A stage-1 codebook always exists (b1 >= 1); b2 = 0 is one stage.
struct CodecLimit {
    std::string_view key;  // the JSON key and the name in the string form ("d", "b1", ...)
    std::string_view what; // the field in words, for messages ("vector length d")
    int min, max;
    constexpr bool contains(int v) const noexcept { return v >= min && v <= max; }
    std::string rangeText() const { return std::to_string(min) + ".." + std::to_string(max); } // "1..32"
};
struct CodecLimits {
    CodecLimit d, b1, b2, subspaces;
};
inline constexpr CodecLimits kCodecLimits{
    {"d", "vector length d", 1, 32},
    {"b1", "stage-1 bits b1", 1, 12},
    {"b2", "stage-2 bits b2", 0, 12},
    {"subspaces", "subspaces", 1, 64},
};

// One row of the bits table: `--bits B` means this configuration.
struct BitsPreset {
    double bits;
    int d, b1, b2;
    std::string_view label; // plain words for the GUI ("smallest", "balanced", ...)

    constexpr CodecConfig config(int subspaces) const noexcept { return {d, b1, b2, subspaces}; }
};

// The --bits table. Code bits per weight = (b1 + b2) / d; both stages are searched jointly
// (over all pairs when 2^(b1+b2) <= 4096, else over the best stage-1 entries). Each row was
// chosen by measuring relative error and speed on Gaussian 4096 x 4096 data against the
// alternatives with the same code bits (bench/novaq_bench; figures in the README). In the
// header so that the tables which refer to its rows (the planner's role table) can be checked
// against it at compile time.
inline constexpr std::array kBitsPresets{
    BitsPreset{1.0, 8, 8, 0, "smallest"},      BitsPreset{1.5, 8, 8, 4, "compact"},
    BitsPreset{2.0, 8, 8, 8, "balanced"},      BitsPreset{2.5, 6, 8, 7, "good quality"},
    BitsPreset{3.0, 4, 8, 4, "high quality"},  BitsPreset{4.0, 4, 8, 8, "very high quality"},
    BitsPreset{5.0, 2, 6, 4, "near original"}, BitsPreset{6.0, 2, 6, 6, "best quality"},
};

// The row of kBitsPresets whose bits are exactly `bits`, or kBitsPresets.size(). constexpr, for
// tables that name presets by their bits: presetIndex(1.5) in a constant expression fails to
// compile when 1.5 is not a row.
constexpr size_t presetIndex(double bits) noexcept
{
    for (size_t i = 0; i < kBitsPresets.size(); ++i)
        if (kBitsPresets[i].bits == bits)
            return i;
    return kBitsPresets.size();
}

std::span<const BitsPreset> bitsPresets() noexcept;
// The preset for `bits` (exact match to 1e-9), or nullopt.
std::optional<BitsPreset> presetForBits(double bits) noexcept;
// Checks d, b1, b2 and subspaces against kCodecLimits; returns an empty string when valid, else
// what is wrong, naming the field, the value and the allowed range
// ("vector length d must be 1..32 (got 40)").
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
