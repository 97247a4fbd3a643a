#include "novaq/codec/codec_config.h"

#include <array>
#include <cmath>

namespace novaq {

namespace {

// The --bits table. Code bits per weight = (b1 + b2) / d; both stages are searched jointly
// (over all pairs when 2^(b1+b2) <= 4096, else over the best stage-1 entries). Each row was
// chosen by measuring relative error and speed on Gaussian 4096 x 4096 data against the
// alternatives with the same code bits (bench/novaq_bench; figures in the README).
constexpr std::array kPresets{
    BitsPreset{1.0, 8, 8, 0, "smallest"},      BitsPreset{1.5, 8, 8, 4, "compact"},
    BitsPreset{2.0, 8, 8, 8, "balanced"},      BitsPreset{2.5, 6, 8, 7, "good quality"},
    BitsPreset{3.0, 4, 8, 4, "high quality"},  BitsPreset{4.0, 4, 8, 8, "very high quality"},
    BitsPreset{5.0, 2, 6, 4, "near original"}, BitsPreset{6.0, 2, 6, 6, "best quality"},
};

} // namespace

std::span<const BitsPreset> bitsPresets() noexcept { return kPresets; }

std::optional<BitsPreset> presetForBits(double bits) noexcept
{
    for (const BitsPreset& p : kPresets)
        if (std::abs(p.bits - bits) < 1e-9)
            return p;
    return std::nullopt;
}

std::string validateConfig(const CodecConfig& c)
{
    if (c.d < 1 || c.d > 32)
        return "vector length d must be 1..32 (got " + std::to_string(c.d) + ")";
    if (c.b1 < 1 || c.b1 > 12)
        return "stage-1 bits b1 must be 1..12 (got " + std::to_string(c.b1) + ")";
    if (c.b2 < 0 || c.b2 > 12)
        return "stage-2 bits b2 must be 0..12 (got " + std::to_string(c.b2) + ")";
    if (c.subspaces < 1 || c.subspaces > 64)
        return "subspaces must be 1..64 (got " + std::to_string(c.subspaces) + ")";
    return {};
}

} // namespace novaq
