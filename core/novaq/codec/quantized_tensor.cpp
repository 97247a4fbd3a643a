#include "novaq/codec/quantized_tensor.h"

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"
#include "novaq/tensor/dtype.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace novaq {

namespace {

int64_t entries1(const CodecConfig& c) noexcept { return int64_t{1} << c.b1; }
int64_t entries2(const CodecConfig& c) noexcept { return c.b2 > 0 ? int64_t{1} << c.b2 : 0; }

uint64_t codebookCount(const CodecConfig& c) noexcept
{
    return static_cast<uint64_t>(c.subspaces) * static_cast<uint64_t>(entries1(c) + entries2(c)) *
           static_cast<uint64_t>(c.d);
}

uint64_t codeBytes(int64_t rows, int64_t cols, const CodecConfig& c) noexcept
{
    const uint64_t bits = static_cast<uint64_t>(rows) * static_cast<uint64_t>(vectorsPerRow(cols, c.d)) *
                          static_cast<uint64_t>(c.b1 + c.b2);
    return (bits + 7) / 8;
}

// Reads `nbits` (<= 24) bits at bit position `pos` of an LSB-first stream.
uint32_t readBits(const uint8_t* data, uint64_t pos, int nbits) noexcept
{
    if (nbits == 0)
        return 0;
    uint64_t byte = pos >> 3;
    const int shift = static_cast<int>(pos & 7);
    uint32_t v = 0;
    const int need = (shift + nbits + 7) / 8;
    for (int i = 0; i < need; ++i)
        v |= static_cast<uint32_t>(data[byte + static_cast<uint64_t>(i)]) << (8 * i);
    return (v >> shift) & ((1u << nbits) - 1u);
}

// The payload's numbers are little-endian, as in every file here (io/bytes.h), whatever the
// host; on x86 and ARM these loops are plain copies.
template <typename T>
void put(std::vector<std::byte>& out, size_t& pos, const T* src, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        storeLe(out.data() + pos + i * sizeof(T), src[i]);
    pos += count * sizeof(T);
}

template <typename T>
void get(std::span<const std::byte> in, size_t& pos, T* dst, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = loadLe<T>(in.data() + pos + i * sizeof(T));
    pos += count * sizeof(T);
}

} // namespace

int64_t vectorsPerRow(int64_t cols, int d) noexcept { return (cols + d - 1) / d; }

int64_t subspaceBegin(int64_t vpr, int subspaces, int k) noexcept
{
    // Contiguous, as even as possible: the first (vpr % K) subspaces get one vector more.
    const int64_t base = vpr / subspaces;
    const int64_t extra = vpr % subspaces;
    return base * k + std::min<int64_t>(k, extra);
}

uint64_t payloadBytes(int64_t rows, int64_t cols, const CodecConfig& c, bool hasColScale) noexcept
{
    const auto r = static_cast<uint64_t>(rows);
    const auto n = static_cast<uint64_t>(cols);
    return 4 + 2 * r + 2 * r + (hasColScale ? 2 * n : 0) + 2 * codebookCount(c) + codeBytes(rows, cols, c);
}

std::vector<std::byte> serialize(const QuantizedTensor& q)
{
    std::vector<std::byte> out(payloadBytes(q.rows, q.cols, q.config, q.hasColScale));
    size_t pos = 0;
    put(out, pos, &q.scale, 1);
    put(out, pos, q.rowMean.data(), q.rowMean.size());
    put(out, pos, q.rowScale.data(), q.rowScale.size());
    if (q.hasColScale)
        put(out, pos, q.colScale.data(), q.colScale.size());
    put(out, pos, q.codebooks.data(), q.codebooks.size());
    put(out, pos, q.codes.data(), q.codes.size());
    if (pos != out.size())
        internalError("quantized tensor parts do not match its layout");
    return out;
}

QuantizedTensor deserialize(std::span<const std::byte> payload, int64_t rows, int64_t cols, const CodecConfig& config,
                            bool hasColScale)
{
    if (rows <= 0 || cols <= 0)
        throw Error(ErrorKind::Corrupt, "quantized tensor has an empty shape");
    if (std::string problem = validateConfig(config); !problem.empty())
        throw Error(ErrorKind::Corrupt, "quantized tensor codec settings are invalid: " + problem);
    const uint64_t expected = payloadBytes(rows, cols, config, hasColScale);
    if (payload.size() != expected)
        throw Error(ErrorKind::Corrupt, "quantized tensor payload has " + std::to_string(payload.size()) +
                                            " bytes where its shape and codec need " + std::to_string(expected));
    QuantizedTensor q;
    q.rows = rows;
    q.cols = cols;
    q.config = config;
    q.hasColScale = hasColScale;
    q.rowMean.resize(static_cast<size_t>(rows));
    q.rowScale.resize(static_cast<size_t>(rows));
    if (hasColScale)
        q.colScale.resize(static_cast<size_t>(cols));
    q.codebooks.resize(codebookCount(config));
    q.codes.resize(codeBytes(rows, cols, config));
    size_t pos = 0;
    get(payload, pos, &q.scale, 1);
    get(payload, pos, q.rowMean.data(), q.rowMean.size());
    get(payload, pos, q.rowScale.data(), q.rowScale.size());
    if (hasColScale)
        get(payload, pos, q.colScale.data(), q.colScale.size());
    get(payload, pos, q.codebooks.data(), q.codebooks.size());
    get(payload, pos, q.codes.data(), q.codes.size());
    return q;
}

void readCodes(const QuantizedTensor& q, int64_t row, int64_t vec, uint32_t& c1, uint32_t& c2) noexcept
{
    const int bits = q.config.b1 + q.config.b2;
    const uint64_t pos = (static_cast<uint64_t>(row) * static_cast<uint64_t>(vectorsPerRow(q.cols, q.config.d)) +
                          static_cast<uint64_t>(vec)) *
                         static_cast<uint64_t>(bits);
    c1 = readBits(q.codes.data(), pos, q.config.b1);
    c2 = readBits(q.codes.data(), pos + static_cast<uint64_t>(q.config.b1), q.config.b2);
}

void decode(const QuantizedTensor& q, std::span<float> out)
{
    const CodecConfig& c = q.config;
    const int d = c.d;
    const int64_t vpr = vectorsPerRow(q.cols, d);
    const int64_t m1 = entries1(c), m2 = entries2(c);
    const size_t perSubspace = static_cast<size_t>((m1 + m2) * d);
    if (out.size() != static_cast<size_t>(q.rows * q.cols))
        internalError("decode buffer has the wrong size");

    // Codebooks to float once, and the subspace of every vector.
    std::vector<float> books(q.codebooks.size());
    for (size_t i = 0; i < books.size(); ++i)
        books[i] = halfToFloat(q.codebooks[i]);
    std::vector<int> subspaceOf(static_cast<size_t>(vpr));
    for (int k = 0; k < c.subspaces; ++k)
        for (int64_t v = subspaceBegin(vpr, c.subspaces, k); v < subspaceBegin(vpr, c.subspaces, k + 1); ++v)
            subspaceOf[static_cast<size_t>(v)] = k;
    std::vector<float> colScale(static_cast<size_t>(q.cols), 1.0f);
    if (q.hasColScale)
        for (size_t j = 0; j < colScale.size(); ++j)
            colScale[j] = halfToFloat(q.colScale[j]);

    tbb::parallel_for(tbb::blocked_range<int64_t>(0, q.rows, 16), [&](const tbb::blocked_range<int64_t>& range) {
        std::vector<float> vec(static_cast<size_t>(d));
        for (int64_t i = range.begin(); i != range.end(); ++i) {
            const float s = q.scale * halfToFloat(q.rowScale[static_cast<size_t>(i)]);
            const float mu = q.scale * halfToFloat(q.rowMean[static_cast<size_t>(i)]);
            float* row = out.data() + i * q.cols;
            for (int64_t v = 0; v < vpr; ++v) {
                uint32_t a = 0, b = 0;
                readCodes(q, i, v, a, b);
                const float* base =
                    books.data() + static_cast<size_t>(subspaceOf[static_cast<size_t>(v)]) * perSubspace;
                const float* e1 = base + static_cast<size_t>(a) * static_cast<size_t>(d);
                const float* e2 = base + static_cast<size_t>(m1 + b) * static_cast<size_t>(d);
                for (int t = 0; t < d; ++t)
                    vec[static_cast<size_t>(t)] = m2 > 0 ? e1[t] + e2[t] : e1[t];
                const int64_t j0 = v * d;
                const int64_t j1 = std::min<int64_t>(j0 + d, q.cols);
                for (int64_t j = j0; j < j1; ++j)
                    row[j] = s * colScale[static_cast<size_t>(j)] * vec[static_cast<size_t>(j - j0)] + mu;
            }
        }
    });
}

void decodeReference(const QuantizedTensor& q, std::span<float> out)
{
    const CodecConfig& c = q.config;
    const int64_t vpr = vectorsPerRow(q.cols, c.d);
    const int64_t m1 = entries1(c), m2 = entries2(c);
    for (int64_t i = 0; i < q.rows; ++i)
        for (int64_t j = 0; j < q.cols; ++j) {
            const int64_t v = j / c.d;
            int k = 0;
            while (subspaceBegin(vpr, c.subspaces, k + 1) <= v)
                ++k;
            uint32_t a = 0, b = 0;
            readCodes(q, i, v, a, b);
            const size_t base = static_cast<size_t>(k) * static_cast<size_t>((m1 + m2) * c.d);
            const size_t t = static_cast<size_t>(j % c.d);
            float value = halfToFloat(q.codebooks[base + a * static_cast<size_t>(c.d) + t]);
            if (m2 > 0)
                value += halfToFloat(q.codebooks[base + static_cast<size_t>(m1 + b) * static_cast<size_t>(c.d) + t]);
            const float colScale = q.hasColScale ? halfToFloat(q.colScale[static_cast<size_t>(j)]) : 1.0f;
            const float s = q.scale * halfToFloat(q.rowScale[static_cast<size_t>(i)]);
            const float mu = q.scale * halfToFloat(q.rowMean[static_cast<size_t>(i)]);
            out[static_cast<size_t>(i * q.cols + j)] = s * colScale * value + mu;
        }
}

} // namespace novaq
