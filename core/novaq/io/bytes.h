#pragma once
// Little-endian integers and floats at any address: every file format here (GGUF,
// safetensors, the .novaq container, zip, SentencePiece, llama2.c) stores them so, whatever
// the host. One definition, used by every reader and writer (the readers through
// io/byte_cursor.h). The one big-endian field (a pickle's BINFLOAT) has loadBe beside it.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace novaq {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian hosts are not supported");

namespace detail {
template <typename T>
using LeBits = std::conditional_t<
    sizeof(T) == 1, uint8_t,
    std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

template <typename U>
U byteSwap(U v) noexcept
{
    U out = 0;
    for (size_t i = 0; i < sizeof(U); ++i, v = static_cast<U>(uint64_t(v) >> 8))
        out = static_cast<U>((uint64_t(out) << 8) | (v & 0xff));
    return out;
}
} // namespace detail

// The T (integer, float or double) stored little-endian at `p` (a plain load on x86 and ARM;
// these sit in the inner loops of the format conversions).
template <typename T>
T loadLe(const void* p) noexcept
{
    static_assert(std::is_trivially_copyable_v<T> &&
                  (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8));
    detail::LeBits<T> v;
    std::memcpy(&v, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::big)
        v = detail::byteSwap(v);
    return std::bit_cast<T>(v);
}

// The T stored big-endian at `p`.
template <typename T>
T loadBe(const void* p) noexcept
{
    static_assert(std::is_trivially_copyable_v<T> &&
                  (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8));
    detail::LeBits<T> v;
    std::memcpy(&v, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::little)
        v = detail::byteSwap(v);
    return std::bit_cast<T>(v);
}

// Stores `value` little-endian at `p`.
template <typename T>
void storeLe(void* p, T value) noexcept
{
    static_assert(std::is_trivially_copyable_v<T> &&
                  (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8));
    auto v = std::bit_cast<detail::LeBits<T>>(value);
    if constexpr (std::endian::native == std::endian::big)
        v = detail::byteSwap(v);
    std::memcpy(p, &v, sizeof(T));
}

} // namespace novaq
