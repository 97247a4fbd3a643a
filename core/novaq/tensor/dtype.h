#pragma once
// The one table of element types. Adding a type is one row in dtype.cpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace novaq {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

struct DTypeInfo {
    DType type;
    std::string_view name; // as safetensors spells it ("F16", "BF16", ...)
    uint32_t bytes;        // bytes per element
    bool convertible;      // converts to float (a weight we can quantize or export)
};

const DTypeInfo& dtypeInfo(DType type) noexcept;
// F16, BF16, F32 and F64: the types that can hold NaN or infinity and that export keeps as a float type.
bool isFloatDType(DType type) noexcept;
std::span<const DTypeInfo> allDTypes() noexcept;
std::optional<DType> dtypeFromName(std::string_view name) noexcept; // case-sensitive, as on disk

float halfToFloat(uint16_t h) noexcept;
uint16_t floatToHalf(float f) noexcept; // round to nearest even, saturates to inf like IEEE
float bf16ToFloat(uint16_t b) noexcept;
uint16_t floatToBf16(float f) noexcept; // round to nearest even, NaN kept NaN

// Converts `count` little-endian elements of `type` at `src` (any alignment) to float.
// Throws Error(Unsupported) for types that are not numbers (none today).
void convertToFloat(DType type, const std::byte* src, size_t count, float* dst);

// Writes `count` floats as `type` (F32, F16 or BF16) little-endian to `dst`.
void convertFromFloat(DType type, const float* src, size_t count, std::byte* dst);

} // namespace novaq
