#include "novaq/codec/codec_config.h"

#include <cmath>

namespace novaq {

std::span<const BitsPreset> bitsPresets() noexcept { return kBitsPresets; }

std::optional<BitsPreset> presetForBits(double bits) noexcept
{
    for (const BitsPreset& p : kBitsPresets)
        if (std::abs(p.bits - bits) < 1e-9)
            return p;
    return std::nullopt;
}

namespace {

std::string outOfRange(const CodecLimit& limit, int value)
{
    return std::string(limit.what) + " must be " + limit.rangeText() + " (got " + std::to_string(value) + ")";
}

} // namespace

std::string validateConfig(const CodecConfig& c)
{
    const CodecLimits& l = kCodecLimits;
    if (!l.d.contains(c.d))
        return outOfRange(l.d, c.d);
    if (!l.b1.contains(c.b1))
        return outOfRange(l.b1, c.b1);
    if (!l.b2.contains(c.b2))
        return outOfRange(l.b2, c.b2);
    if (!l.subspaces.contains(c.subspaces))
        return outOfRange(l.subspaces, c.subspaces);
    return {};
}

} // namespace novaq
