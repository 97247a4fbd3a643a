#include "novaq/formats/gguf_quants.h"

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace novaq {

namespace {

// ---------------------------------------------------------------------------------------
// On-disk blocks. Every field is a byte array or a Half (two little-endian bytes), so the
// structs have no padding and read the same on any host; the sizes are the format.

struct Half {
    uint8_t bits[2];
    float value() const noexcept { return halfToFloat(loadLe<uint16_t>(bits)); }
};
static_assert(sizeof(Half) == 2);

constexpr uint32_t kQk = 32;   // weights per block of the legacy types
constexpr uint32_t kQkK = 256; // weights per super-block of the K-quants

struct BlockQ4_0 {
    Half d;
    uint8_t qs[kQk / 2];
};
struct BlockQ4_1 {
    Half d;
    Half m;
    uint8_t qs[kQk / 2];
};
struct BlockQ5_0 {
    Half d;
    uint8_t qh[4];
    uint8_t qs[kQk / 2];
};
struct BlockQ5_1 {
    Half d;
    Half m;
    uint8_t qh[4];
    uint8_t qs[kQk / 2];
};
struct BlockQ8_0 {
    Half d;
    int8_t qs[kQk];
};
struct BlockQ2_K {
    uint8_t scales[kQkK / 16]; // low nibble scale, high nibble min, per 16 weights
    uint8_t qs[kQkK / 4];
    Half d;
    Half dmin;
};
struct BlockQ3_K {
    uint8_t hmask[kQkK / 8];
    uint8_t qs[kQkK / 4];
    uint8_t scales[12]; // sixteen 6-bit scales
    Half d;
};
struct BlockQ4_K {
    Half d;
    Half dmin;
    uint8_t scales[12]; // eight 6-bit scales and eight 6-bit mins
    uint8_t qs[kQkK / 2];
};
struct BlockQ5_K {
    Half d;
    Half dmin;
    uint8_t scales[12];
    uint8_t qh[kQkK / 8];
    uint8_t qs[kQkK / 2];
};
struct BlockQ6_K {
    uint8_t ql[kQkK / 2];
    uint8_t qh[kQkK / 4];
    int8_t scales[kQkK / 16];
    Half d;
};

static_assert(sizeof(BlockQ4_0) == 18, "block_q4_0 is 18 bytes for 32 weights");
static_assert(sizeof(BlockQ4_1) == 20, "block_q4_1 is 20 bytes for 32 weights");
static_assert(sizeof(BlockQ5_0) == 22, "block_q5_0 is 22 bytes for 32 weights");
static_assert(sizeof(BlockQ5_1) == 24, "block_q5_1 is 24 bytes for 32 weights");
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 is 34 bytes for 32 weights");
static_assert(sizeof(BlockQ2_K) == 84, "block_q2_K is 84 bytes for 256 weights");
static_assert(sizeof(BlockQ3_K) == 110, "block_q3_K is 110 bytes for 256 weights");
static_assert(sizeof(BlockQ4_K) == 144, "block_q4_K is 144 bytes for 256 weights");
static_assert(sizeof(BlockQ5_K) == 176, "block_q5_K is 176 bytes for 256 weights");
static_assert(sizeof(BlockQ6_K) == 210, "block_q6_K is 210 bytes for 256 weights");

template <typename Block>
Block loadBlock(const std::byte* src, size_t index) noexcept
{
    Block block;
    std::memcpy(&block, src + index * sizeof(Block), sizeof(Block));
    return block;
}

// ---------------------------------------------------------------------------------------
// Scalar reference dequantizers. Within a block, weight j runs along GGUF ne[0].

template <DType kType>
void plainRef(const std::byte* src, size_t blocks, float* y)
{
    convertToFloat(kType, src, blocks, y);
}

void q4_0Ref(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ4_0>(src, i);
        const float d = b.d.value();
        for (uint32_t j = 0; j < kQk / 2; ++j) {
            y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
            y[j + kQk / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
        }
    }
}

// IQ4_NL: Q4_0's layout (f16 scale, 16 bytes of 4-bit indices), but each index picks a
// value from a fixed non-linear grid instead of standing for (q - 8).
constexpr std::array<int8_t, 16> kIq4NlGrid{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void iq4_nlRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ4_0>(src, i);
        const float d = b.d.value();
        for (uint32_t j = 0; j < kQk / 2; ++j) {
            y[j] = d * static_cast<float>(kIq4NlGrid[b.qs[j] & 0x0F]);
            y[j + kQk / 2] = d * static_cast<float>(kIq4NlGrid[b.qs[j] >> 4]);
        }
    }
}

void q4_1Ref(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ4_1>(src, i);
        const float d = b.d.value();
        const float m = b.m.value();
        for (uint32_t j = 0; j < kQk / 2; ++j) {
            y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
            y[j + kQk / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
        }
    }
}

// The fifth bits of a Q5 block: bit j of qh belongs to weight j (0..31).
template <typename Block>
void q5Values(const Block& b, int offset, std::array<int, kQk>& q) noexcept
{
    const uint32_t qh = loadLe<uint32_t>(b.qh);
    for (uint32_t j = 0; j < kQk / 2; ++j) {
        const int high0 = static_cast<int>((qh >> j) & 1u) << 4;
        const int high1 = static_cast<int>((qh >> (j + kQk / 2)) & 1u) << 4;
        q[j] = ((b.qs[j] & 0x0F) | high0) - offset;
        q[j + kQk / 2] = ((b.qs[j] >> 4) | high1) - offset;
    }
}

void q5_0Ref(const std::byte* src, size_t blocks, float* y)
{
    std::array<int, kQk> q{};
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ5_0>(src, i);
        const float d = b.d.value();
        q5Values(b, 16, q);
        for (uint32_t j = 0; j < kQk; ++j)
            y[j] = static_cast<float>(q[j]) * d;
    }
}

void q5_1Ref(const std::byte* src, size_t blocks, float* y)
{
    std::array<int, kQk> q{};
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ5_1>(src, i);
        const float d = b.d.value();
        const float m = b.m.value();
        q5Values(b, 0, q);
        for (uint32_t j = 0; j < kQk; ++j)
            y[j] = static_cast<float>(q[j]) * d + m;
    }
}

void q8_0Ref(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i, y += kQk) {
        const auto b = loadBlock<BlockQ8_0>(src, i);
        const float d = b.d.value();
        for (uint32_t j = 0; j < kQk; ++j)
            y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

// Q2_K: 16 groups of 16 weights, 2 bits each. The 64 qs bytes hold two halves of 128
// weights; within a half, bit pair `shift` of byte l (0..31) is weight 32*(shift/2) + l.
void q2_KRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i) {
        const auto b = loadBlock<BlockQ2_K>(src, i);
        const float d = b.d.value();
        const float dmin = b.dmin.value();
        int group = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part, ++group) {
                    const uint8_t sc = b.scales[group];
                    const float dl = d * static_cast<float>(sc & 0x0F);
                    const float ml = dmin * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

// The sixteen 6-bit Q3_K scales: low 4 bits from bytes 0..7 (low nibbles for scales 0..7,
// high nibbles for 8..15), high 2 bits from bytes 8..11, bit pair i/4 of byte 8 + i%4.
std::array<int, 16> q3Scales(const uint8_t (&s)[12]) noexcept
{
    std::array<int, 16> out{};
    for (int i = 0; i < 16; ++i) {
        const int low = i < 8 ? (s[i] & 0x0F) : (s[i - 8] >> 4);
        const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        out[static_cast<size_t>(i)] = (low | (high << 4)) - 32;
    }
    return out;
}

// Q3_K: as Q2_K's layout for the low two bits; the third bit, from hmask (bit `shift/2 +
// 4*half` of byte l), adds 4: a clear bit means the value is 4 lower.
void q3_KRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i) {
        const auto b = loadBlock<BlockQ3_K>(src, i);
        const float d = b.d.value();
        const std::array<int, 16> scales = q3Scales(b.scales);
        int group = 0;
        uint8_t mask = 1;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, mask = static_cast<uint8_t>(mask << 1)) {
                for (int part = 0; part < 2; ++part, ++group) {
                    const float dl = d * static_cast<float>(scales[static_cast<size_t>(group)]);
                    for (int l = 16 * part; l < 16 * part + 16; ++l) {
                        const int low = (q[l] >> shift) & 3;
                        const int value = low - ((b.hmask[l] & mask) ? 0 : 4);
                        *y++ = dl * static_cast<float>(value);
                    }
                }
            }
        }
    }
}

// Scale and min `j` (0..7) of a Q4_K/Q5_K block: 6 bits each, packed in 12 bytes.
void scaleMinK4(int j, const uint8_t (&s)[12], int& scale, int& min) noexcept
{
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// The scales and minimums of the two 32-weight halves of chunk c (Q4_K and Q5_K).
struct KChunkScales {
    float d1, m1, d2, m2;
};
KChunkScales chunkScales(const uint8_t (&scales)[12], float d, float dmin, int c)
{
    int sc = 0, m = 0;
    scaleMinK4(2 * c, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scaleMinK4(2 * c + 1, scales, sc, m);
    return {d1, m1, d * static_cast<float>(sc), dmin * static_cast<float>(m)};
}

// Q4_K: 4 chunks of 64 weights; chunk c uses qs[32c..32c+31], low nibbles for its first 32
// weights (sub-block 2c) and high nibbles for the next 32 (sub-block 2c+1).
void q4_KRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i) {
        const auto b = loadBlock<BlockQ4_K>(src, i);
        const float d = b.d.value();
        const float dmin = b.dmin.value();
        for (int c = 0; c < 4; ++c) {
            const uint8_t* q = b.qs + 32 * c;
            const auto [d1, m1, d2, m2] = chunkScales(b.scales, d, dmin, c);
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

// Q5_K: Q4_K plus a fifth bit per weight: bit 2c of qh[l] for the first 32 weights of chunk
// c, bit 2c+1 for the second 32.
void q5_KRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i) {
        const auto b = loadBlock<BlockQ5_K>(src, i);
        const float d = b.d.value();
        const float dmin = b.dmin.value();
        for (int c = 0; c < 4; ++c) {
            const uint8_t* q = b.qs + 32 * c;
            const auto bit1 = static_cast<uint8_t>(1u << (2 * c));
            const auto bit2 = static_cast<uint8_t>(2u << (2 * c));
            const auto [d1, m1, d2, m2] = chunkScales(b.scales, d, dmin, c);
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * static_cast<float>((q[l] & 0x0F) + ((b.qh[l] & bit1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * static_cast<float>((q[l] >> 4) + ((b.qh[l] & bit2) ? 16 : 0)) - m2;
        }
    }
}

// Q6_K: two halves of 128 weights; in half h, weight 32k + l (k = 0..3, l = 0..31) takes
// its low 4 bits from ql[64h + l + 32*(k%2)] (low nibble for k<2, high for k>=2) and its
// high 2 bits from bit pair k of qh[32h + l]; scale sc[8h + l/16 + 2k], signed.
void q6_KRef(const std::byte* src, size_t blocks, float* y)
{
    for (size_t i = 0; i < blocks; ++i) {
        const auto b = loadBlock<BlockQ6_K>(src, i);
        const float d = b.d.value();
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = b.ql + 64 * h;
            const uint8_t* qh = b.qh + 32 * h;
            const int8_t* sc = b.scales + 8 * h;
            for (int k = 0; k < 4; ++k) {
                for (int l = 0; l < 32; ++l) {
                    const uint8_t lowByte = ql[l + 32 * (k % 2)];
                    const int low = k < 2 ? (lowByte & 0x0F) : (lowByte >> 4);
                    const int high = (qh[l] >> (2 * k)) & 3;
                    const int q = (low | (high << 4)) - 32;
                    y[32 * k + l] = d * static_cast<float>(sc[l / 16 + 2 * k]) * static_cast<float>(q);
                }
            }
            y += 128;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The table. Rows of unsupported types carry only their size, so files holding them open.

constexpr std::optional<DType> kNoDType = std::nullopt;

template <DType kType>
constexpr GgmlTypeTraits plainRow(uint32_t id, std::string_view name, uint32_t bytes)
{
    return {id, name, 1, bytes, kType, plainRef<kType>, plainRef<kType>};
}

template <typename Block>
constexpr GgmlTypeTraits blockRow(uint32_t id, std::string_view name, uint32_t weights, GgmlDequantFn reference)
{
    return {id, name, weights, sizeof(Block), kNoDType, reference, reference};
}

constexpr GgmlTypeTraits unsupportedRow(uint32_t id, std::string_view name, uint32_t weights, uint32_t bytes)
{
    return {id, name, weights, bytes, kNoDType, nullptr, nullptr};
}

// The production kernels are the reference kernels today (dequantizeGgml() adds threads);
// a faster kernel replaces the second function of its row and is tested against the first.
constexpr std::array<GgmlTypeTraits, 35> kGgmlTypes{{
    plainRow<DType::F32>(0, "F32", 4),
    plainRow<DType::F16>(1, "F16", 2),
    blockRow<BlockQ4_0>(2, "Q4_0", kQk, q4_0Ref),
    blockRow<BlockQ4_1>(3, "Q4_1", kQk, q4_1Ref),
    blockRow<BlockQ5_0>(6, "Q5_0", kQk, q5_0Ref),
    blockRow<BlockQ5_1>(7, "Q5_1", kQk, q5_1Ref),
    blockRow<BlockQ8_0>(8, "Q8_0", kQk, q8_0Ref),
    unsupportedRow(9, "Q8_1", kQk, 36),
    blockRow<BlockQ2_K>(10, "Q2_K", kQkK, q2_KRef),
    blockRow<BlockQ3_K>(11, "Q3_K", kQkK, q3_KRef),
    blockRow<BlockQ4_K>(12, "Q4_K", kQkK, q4_KRef),
    blockRow<BlockQ5_K>(13, "Q5_K", kQkK, q5_KRef),
    blockRow<BlockQ6_K>(14, "Q6_K", kQkK, q6_KRef),
    unsupportedRow(15, "Q8_K", kQkK, 292),
    unsupportedRow(16, "IQ2_XXS", kQkK, 66),
    unsupportedRow(17, "IQ2_XS", kQkK, 74),
    unsupportedRow(18, "IQ3_XXS", kQkK, 98),
    unsupportedRow(19, "IQ1_S", kQkK, 50),
    blockRow<BlockQ4_0>(20, "IQ4_NL", kQk, iq4_nlRef),
    unsupportedRow(21, "IQ3_S", kQkK, 110),
    unsupportedRow(22, "IQ2_S", kQkK, 82),
    unsupportedRow(23, "IQ4_XS", kQkK, 136),
    plainRow<DType::I8>(24, "I8", 1),
    plainRow<DType::I16>(25, "I16", 2),
    plainRow<DType::I32>(26, "I32", 4),
    plainRow<DType::I64>(27, "I64", 8),
    plainRow<DType::F64>(28, "F64", 8),
    unsupportedRow(29, "IQ1_M", kQkK, 56),
    plainRow<DType::BF16>(30, "BF16", 2),
    unsupportedRow(34, "TQ1_0", kQkK, 54),
    unsupportedRow(35, "TQ2_0", kQkK, 66),
    unsupportedRow(39, "MXFP4", kQk, 17),
    unsupportedRow(40, "NVFP4", 64, 36),
    unsupportedRow(41, "Q1_0", 128, 18),
    unsupportedRow(42, "Q2_0", 64, 18),
}};

constexpr bool tableIsSorted()
{
    for (size_t i = 1; i < kGgmlTypes.size(); ++i)
        if (kGgmlTypes[i - 1].id >= kGgmlTypes[i].id)
            return false;
    return true;
}
static_assert(tableIsSorted(), "kGgmlTypes must be in increasing id order");

// Below this many weights a tensor is converted on the calling thread.
constexpr size_t kParallelWeights = size_t{1} << 18;
constexpr size_t kWeightsPerTask = size_t{1} << 16;

} // namespace

std::span<const GgmlTypeTraits> ggmlTypeTable() noexcept { return kGgmlTypes; }

std::string supportedGgmlTypeNames()
{
    std::string names;
    for (const GgmlTypeTraits& row : kGgmlTypes) {
        if (!row.supported())
            continue;
        if (!names.empty())
            names += ", ";
        names += row.name;
    }
    return names;
}

const GgmlTypeTraits* ggmlTypeTraits(uint32_t id) noexcept
{
    for (const GgmlTypeTraits& row : kGgmlTypes)
        if (row.id == id)
            return &row;
    return nullptr;
}

const GgmlTypeTraits* ggmlTypeByName(std::string_view name) noexcept
{
    for (const GgmlTypeTraits& row : kGgmlTypes)
        if (row.name == name)
            return &row;
    return nullptr;
}

void dequantizeGgml(const GgmlTypeTraits& type, const std::byte* src, size_t count, float* dst)
{
    if (!type.supported())
        throw Error(ErrorKind::Unsupported,
                    "GGUF tensor type " + std::string(type.name) +
                        " cannot be converted to float yet (supported: " + supportedGgmlTypeNames() + ")");
    const size_t blocks = count / type.blockSize;
    if (count < kParallelWeights) {
        type.dequantize(src, blocks, dst);
        return;
    }
    // Blocks are independent, so the split changes nothing in the output.
    const size_t grain = std::max<size_t>(1, kWeightsPerTask / type.blockSize);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, blocks, grain), [&](const tbb::blocked_range<size_t>& r) {
        type.dequantize(src + r.begin() * type.blockBytes, r.size(), dst + r.begin() * type.blockSize);
    });
}

} // namespace novaq
