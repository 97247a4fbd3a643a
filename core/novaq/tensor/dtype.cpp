#include "novaq/tensor/dtype.h"

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

namespace novaq {

namespace {

using ToFloatFn = void (*)(const std::byte* src, size_t count, float* dst);
using FromFloatFn = void (*)(const float* src, size_t count, std::byte* dst);

template <typename T>
void numberToFloat(const std::byte* src, size_t count, float* dst)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = static_cast<float>(loadLe<T>(src + i * sizeof(T)));
}

void f16ToFloat(const std::byte* src, size_t count, float* dst)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = halfToFloat(loadLe<uint16_t>(src + 2 * i));
}

void bf16ToFloatN(const std::byte* src, size_t count, float* dst)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = bf16ToFloat(loadLe<uint16_t>(src + 2 * i));
}

void boolToFloat(const std::byte* src, size_t count, float* dst)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = src[i] != std::byte{0} ? 1.0f : 0.0f;
}

void floatToF32(const float* src, size_t count, std::byte* dst)
{
    for (size_t i = 0; i < count; ++i)
        storeLe(dst + 4 * i, src[i]);
}

void floatToF16(const float* src, size_t count, std::byte* dst)
{
    for (size_t i = 0; i < count; ++i)
        storeLe(dst + 2 * i, floatToHalf(src[i]));
}

void floatToBf16N(const float* src, size_t count, std::byte* dst)
{
    for (size_t i = 0; i < count; ++i)
        storeLe(dst + 2 * i, floatToBf16(src[i]));
}

// The table. `convertible` marks floating-point weights (what the planner may quantize and
// export); integer and bool tensors still convert to float for inspection.
constexpr std::array<DTypeInfo, 10> kInfos{{
    {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},
    {DType::F64, "F64", 8, true},
    {DType::I64, "I64", 8, false},
    {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},
    {DType::I8, "I8", 1, false},
    {DType::U8, "U8", 1, false},
    {DType::Bool, "BOOL", 1, false},
}};

struct Codec {
    ToFloatFn toFloat;
    FromFloatFn fromFloat; // nullptr: not a type we write
};

// Same order as kInfos (checked below).
constexpr std::array<Codec, kInfos.size()> kCodecs{{
    {numberToFloat<float>, floatToF32},
    {f16ToFloat, floatToF16},
    {bf16ToFloatN, floatToBf16N},
    {numberToFloat<double>, nullptr},
    {numberToFloat<int64_t>, nullptr},
    {numberToFloat<int32_t>, nullptr},
    {numberToFloat<int16_t>, nullptr},
    {numberToFloat<int8_t>, nullptr},
    {numberToFloat<uint8_t>, nullptr},
    {boolToFloat, nullptr},
}};

constexpr bool tableIsIndexedByType()
{
    for (size_t i = 0; i < kInfos.size(); ++i)
        if (static_cast<size_t>(kInfos[i].type) != i)
            return false;
    return true;
}
static_assert(tableIsIndexedByType(), "kInfos rows must follow the order of enum class DType");

std::string writableTypes()
{
    std::string names;
    for (size_t i = 0; i < kInfos.size(); ++i) {
        if (kCodecs[i].fromFloat == nullptr)
            continue;
        if (!names.empty())
            names += ", ";
        names += kInfos[i].name;
    }
    return names;
}

} // namespace

bool isFloatDType(DType type) noexcept
{
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || type == DType::F64;
}

const DTypeInfo& dtypeInfo(DType type) noexcept { return kInfos[static_cast<size_t>(type)]; }

std::span<const DTypeInfo> allDTypes() noexcept { return kInfos; }

std::optional<DType> dtypeFromName(std::string_view name) noexcept
{
    for (const DTypeInfo& info : kInfos)
        if (info.name == name)
            return info.type;
    return std::nullopt;
}

float halfToFloat(uint16_t h) noexcept
{
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits = 0;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13); // inf, or NaN with its payload
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign; // signed zero
    } else {
        // Subnormal: mantissa * 2^-24. Normalize so the leading 1 becomes the implicit bit.
        int shift = std::countl_zero(mantissa) - 21; // bits to move the top 1 to bit 10
        mantissa = (mantissa << shift) & 0x3FFu;
        bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
    }
    return std::bit_cast<float>(bits);
}

uint16_t floatToHalf(float f) noexcept
{
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7FFFFFFFu;

    if (magnitude >= 0x7F800000u) {
        if (magnitude == 0x7F800000u)
            return sign | 0x7C00u; // inf
        // NaN: keep the top payload bits, force the quiet bit so it cannot become inf.
        return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
    }
    if (magnitude >= 0x477FF000u) // >= 65520: rounds past 65504 (ties go to the even inf)
        return sign | 0x7C00u;

    if (magnitude >= 0x38800000u) { // >= 2^-14: a normal half
        uint32_t q = (magnitude >> 13) - (112u << 10);
        const uint32_t rest = magnitude & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (q & 1u)))
            ++q; // a carry into the exponent is the correct result
        return static_cast<uint16_t>(sign | q);
    }

    // Below 2^-14: a subnormal half, in units of 2^-24, or zero.
    const uint32_t exponent = magnitude >> 23;
    const uint32_t shift = 126 - exponent; // value / 2^-24 = (1.mantissa * 2^23) >> shift
    if (shift > 24)
        return sign; // below 2^-25 (half the smallest subnormal): rounds to zero
    const uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    uint32_t q = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u)))
        ++q; // may become 0x400, the smallest normal: correct
    return static_cast<uint16_t>(sign | q);
}

float bf16ToFloat(uint16_t b) noexcept { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t floatToBf16(float f) noexcept
{
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        return static_cast<uint16_t>((bits >> 16) | 0x0040u); // NaN stays NaN (quiet)
    const uint32_t roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>((bits + roundingBias) >> 16); // overflow rounds to inf, as IEEE
}

void convertToFloat(DType type, const std::byte* src, size_t count, float* dst)
{
    const size_t index = static_cast<size_t>(type);
    if (index >= kCodecs.size())
        throw Error(ErrorKind::Unsupported, "element type " + std::to_string(index) + " cannot be converted to float");
    kCodecs[index].toFloat(src, count, dst);
}

void convertFromFloat(DType type, const float* src, size_t count, std::byte* dst)
{
    const size_t index = static_cast<size_t>(type);
    if (index >= kCodecs.size() || kCodecs[index].fromFloat == nullptr) {
        const std::string name = index < kInfos.size() ? std::string(kInfos[index].name) : std::to_string(index);
        throw Error(ErrorKind::InvalidArgument,
                    "cannot write elements of type " + name + "; choose one of " + writableTypes());
    }
    kCodecs[index].fromFloat(src, count, dst);
}

} // namespace novaq
