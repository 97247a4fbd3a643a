#pragma once
// A NOVAQ-quantized matrix as stored in a .novaq file, its exact byte layout, and decode.

#include "novaq/codec/codec_config.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace novaq {

// Layout of the payload (all little-endian, no padding between parts):
//   scale     f32                                 g: row means and scales are stored divided by g
//   rowMean   f16[rows]
//   rowScale  f16[rows]
//   colScale  f16[cols]                        only when hasColScale
//   codebooks f16[subspaces][2^b1 + 2^b2][d]   stage-1 entries then stage-2 entries (none if b2 = 0)
//   codes     bit stream, LSB first: for each row, for each vector (cols padded to a
//             multiple of d), b1 bits of the stage-1 code then b2 bits of the stage-2 code
// Reconstruction: W[i][j] = s_i * colScale[j] * (C1[c1] + C2[c2])[j mod d] + mu_i with
// s_i = g * rowScale[i] and mu_i = g * rowMean[i] (g keeps tiny weights inside f16's range),
// where the vector holding column j belongs to subspace subspaceOf(vector).
struct QuantizedTensor {
    int64_t rows = 0;
    int64_t cols = 0;
    CodecConfig config;
    bool hasColScale = false;
    float scale = 1.0f;              // g
    std::vector<uint16_t> rowMean;   // f16 bits
    std::vector<uint16_t> rowScale;  // f16 bits
    std::vector<uint16_t> colScale;  // f16 bits, empty unless hasColScale
    std::vector<uint16_t> codebooks; // f16 bits
    std::vector<uint8_t> codes;      // packed
};

int64_t vectorsPerRow(int64_t cols, int d) noexcept;
// Subspace k covers vectors [subspaceBegin(k), subspaceBegin(k+1)) of each row.
int64_t subspaceBegin(int64_t vectorsPerRow, int subspaces, int k) noexcept;

// Exact payload size in bytes for a tensor of this shape and configuration.
uint64_t payloadBytes(int64_t rows, int64_t cols, const CodecConfig& config, bool hasColScale) noexcept;

std::vector<std::byte> serialize(const QuantizedTensor& q);
// Parses a payload; throws Error(Corrupt) when its size does not match the layout.
QuantizedTensor deserialize(std::span<const std::byte> payload, int64_t rows, int64_t cols, const CodecConfig& config,
                            bool hasColScale);

// Reads code pair (c1, c2) of vector v in row i.
void readCodes(const QuantizedTensor& q, int64_t row, int64_t vec, uint32_t& c1, uint32_t& c2) noexcept;

// Decodes the whole matrix into out (rows * cols floats), parallel over rows.
void decode(const QuantizedTensor& q, std::span<float> out);
// The plain serial twin of decode(), element by element from the layout comment above.
void decodeReference(const QuantizedTensor& q, std::span<float> out);

} // namespace novaq
