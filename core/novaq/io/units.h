#pragma once
// Sizes and counts written for people: one way everywhere (CLI, reports, downloads, errors).

#include <cstdint>
#include <string>

namespace novaq {

// 13644256 -> "13.0 MiB"; below 1 KiB in bytes ("512 B"); binary units up to TiB.
std::string humanBytes(uint64_t bytes);
// 6819072 -> "6,819,072"
std::string withThousands(uint64_t value);

} // namespace novaq
