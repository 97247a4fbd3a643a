#pragma once
// A bounds-checked cursor over bytes in memory (a mapped file, a file read whole): reads
// little-endian values and byte runs in order, and every failure names the file, what was
// being read (the context: "header", "tensor 3 \"wq\"", ...), the field and the byte offset
// where the field starts, with what to do. The binary readers (GGUF, the llama2.c tokenizer,
// ...) read through it instead of checking sizes by hand.

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace novaq {

class ByteCursor {
public:
    // `label` is what messages call the bytes: the file's path, usually.
    ByteCursor(std::span<const std::byte> bytes, std::string label) : m_bytes(bytes), m_label(std::move(label)) {}
    virtual ~ByteCursor() = default;
    ByteCursor(const ByteCursor&) = delete;
    ByteCursor& operator=(const ByteCursor&) = delete;

    const std::string& label() const noexcept { return m_label; }
    uint64_t pos() const noexcept { return m_pos; }
    uint64_t size() const noexcept { return m_bytes.size(); }
    uint64_t remaining() const noexcept { return m_bytes.size() - m_pos; }
    const std::byte* here() const noexcept { return m_bytes.data() + m_pos; }
    // What the next failures are about ("header", "token 7", ...).
    void setContext(std::string context) { m_context = std::move(context); }

    // Throws InvalidInput: "<label>: <context> at offset <at>: <what>".
    [[noreturn]] void fail(const std::string& what, uint64_t at) const
    {
        const std::string context = where();
        // The offset goes with the field it locates, not after the verdict ("the file is
        // truncated at offset N" read as if the file ended there).
        throw Error(ErrorKind::InvalidInput, m_label + ": " + context + (context.empty() ? "" : " ") + "at offset " +
                                                 std::to_string(at) + ": " + what);
    }

    // Fails unless `bytes` more bytes remain for `field`.
    void need(uint64_t bytes, std::string_view field) const
    {
        if (bytes > remaining())
            fail(std::string(field) + " (" + std::to_string(bytes) + " bytes) runs past the end of the file (" +
                     std::to_string(size()) + " bytes); the file is truncated, download or copy it again",
                 m_pos);
    }

    // The integer or float stored little-endian at the cursor.
    template <typename T>
    T read(std::string_view field)
    {
        static_assert(std::is_arithmetic_v<T>);
        need(sizeof(T), field);
        const T v = loadLe<T>(here());
        m_pos += sizeof(T);
        return v;
    }

    // The next `n` bytes, as characters.
    std::string_view readBytes(uint64_t n, std::string_view field)
    {
        need(n, field);
        const std::string_view s(reinterpret_cast<const char*>(here()), static_cast<size_t>(n));
        m_pos += n;
        return s;
    }

    void skip(uint64_t n, std::string_view field)
    {
        need(n, field);
        m_pos += n;
    }

protected:
    // The context as messages give it; a reader may add to it (GGUF adds the array elements).
    virtual std::string where() const { return m_context; }

private:
    std::span<const std::byte> m_bytes;
    std::string m_label;
    std::string m_context;
    uint64_t m_pos = 0;
};

} // namespace novaq
