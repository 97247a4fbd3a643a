#pragma once
// Sizes and counts written for people: one way everywhere (CLI, reports, downloads, errors).

#include <cstdint>
#include <string>

namespace novaq {

// 13644256 -> "13.0 MiB"; below 1 KiB in bytes ("512 B"); binary units up to TiB.
std::string humanBytes(uint64_t bytes);
// 6819072 -> "6,819,072"
std::string withThousands(uint64_t value);
// A limit stated exactly: 1 << 30 -> "1 GiB", 512 << 20 -> "512 MiB", 300 -> "300 bytes"; the
// largest binary unit (up to TiB, as humanBytes) that divides it.
std::string exactBytes(uint64_t bytes);
// A size rounded up to one decimal in SI units (MB below a GB, GB below a TB, then TB), written
// as --fit-memory and --target-size take it back: 11734016 -> "11.8MB".
std::string siBytesAtLeast(uint64_t bytes);

} // namespace novaq
