#pragma once
// A bounds-checked cursor over bytes in memory (a mapped file, a file read whole): reads
// little-endian values and byte runs in order, and every failure names the file, what was
// being read (the context: "header", "tensor 3 \"wq\"", ...), the field and the byte offset
// where the field starts, with what to do. Every binary reader (GGUF, safetensors, llama2.c
// and its tokenizer, the .novaq container, zip records, pickles) reads fixed-layout bytes
// through it instead of checking sizes and loading integers by hand.
//
// A cursor may cover a part of the bytes (range(): a zip's central directory, one record,
// a trailer): offsets stay those of the whole file, and running past the part is named with
// the part. A reader words its own errors by deriving: where() adds to the context, and
// failPastEnd() replaces the message for a field that runs past the end.

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
    // `label` is what messages call the bytes: the file's path, usually. Failures throw `kind`
    // (InvalidInput for a model someone gave us; the .novaq reader says Corrupt).
    ByteCursor(std::span<const std::byte> bytes, std::string label, ErrorKind kind = ErrorKind::InvalidInput)
        : m_bytes(bytes), m_label(std::move(label)), m_kind(kind), m_end(bytes.size())
    {}
    virtual ~ByteCursor() = default;
    ByteCursor(const ByteCursor&) = delete;
    ByteCursor& operator=(const ByteCursor&) = delete;

    const std::string& label() const noexcept { return m_label; }
    ErrorKind kind() const noexcept { return m_kind; }
    // The offset of the next byte in the whole bytes (the file), also in a range.
    uint64_t pos() const noexcept { return m_pos; }
    // The size of the whole bytes (the file), also in a range.
    uint64_t size() const noexcept { return m_bytes.size(); }
    // Where this cursor's bytes end (size() unless it is a range).
    uint64_t end() const noexcept { return m_end; }
    uint64_t remaining() const noexcept { return m_end - m_pos; }
    const std::byte* here() const noexcept { return m_bytes.data() + m_pos; }
    // What the next failures are about ("header", "token 7", ...).
    void setContext(std::string context) { m_context = std::move(context); }

    // Throws `kind`: "<label>: <context> at offset <at>: <what>".
    [[noreturn]] void fail(const std::string& what, uint64_t at) const
    {
        const std::string context = where();
        // The offset goes with the field it locates, not after the verdict ("the file is
        // truncated at offset N" read as if the file ended there).
        throw Error(m_kind, m_label + ": " + context + (context.empty() ? "" : " ") + "at offset " +
                                std::to_string(at) + ": " + what);
    }

    // Fails unless `bytes` more bytes remain for `field`.
    void need(uint64_t bytes, std::string_view field) const
    {
        if (bytes > remaining())
            failPastEnd(field, bytes);
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

    // Whether the next bytes are `magic` (nothing is read; false when fewer bytes remain).
    bool startsWith(std::string_view magic) const noexcept
    {
        return magic.size() <= remaining() &&
               std::string_view(reinterpret_cast<const char*>(here()), magic.size()) == magic;
    }

    // Moves to file offset `offset` (read from `field`, which messages name), which must lie
    // in this cursor's bytes.
    void seek(uint64_t offset, std::string_view field)
    {
        if (offset < m_begin || offset > m_end)
            fail(std::string(field) + " " + std::to_string(offset) + " points outside " + part() + " [" +
                     std::to_string(m_begin) + ", " + std::to_string(m_end) + "); the file is damaged or truncated",
                 m_pos);
        m_pos = offset;
    }

    // A cursor over the `length` bytes of this one that start at file offset `offset`, called
    // `name` in messages ("the central directory"); it starts at `offset`, its offsets are
    // still file offsets, and it cannot read past its end. Fails, naming `name`, its offset
    // and length, unless those bytes lie in this cursor's bytes.
    ByteCursor range(uint64_t offset, uint64_t length, std::string name) const
    {
        if (offset < m_begin || offset > m_end || length > m_end - offset)
            fail(name + " (" + std::to_string(length) + " bytes at offset " + std::to_string(offset) +
                     ") runs past the end of " + part() + " (offset " + std::to_string(m_end) +
                     "); the file is truncated or damaged",
                 offset);
        return ByteCursor(m_bytes, m_label, m_kind, offset, offset + length, std::move(name));
    }

protected:
    // The context as messages give it; a reader may add to it (GGUF adds the array elements).
    virtual std::string where() const { return m_context; }

    // The failure for `bytes` bytes of `field` that are not there; a reader may word it its
    // own way (the pickle names the opcode being read).
    [[noreturn]] virtual void failPastEnd(std::string_view field, uint64_t bytes) const
    {
        if (m_name.empty())
            fail(std::string(field) + " (" + std::to_string(bytes) + " bytes) runs past the end of the file (" +
                     std::to_string(size()) + " bytes); the file is truncated, download or copy it again",
                 m_pos);
        fail(std::string(field) + " (" + std::to_string(bytes) + " bytes) runs past the end of " + m_name +
                 " (offset " + std::to_string(m_end) + "); the file is damaged or truncated",
             m_pos);
    }

    // What this cursor's bytes are called: "the file", or the range's name.
    std::string part() const { return m_name.empty() ? std::string("the file") : m_name; }

private:
    ByteCursor(std::span<const std::byte> bytes, std::string label, ErrorKind kind, uint64_t begin, uint64_t end,
               std::string name)
        : m_bytes(bytes), m_label(std::move(label)), m_kind(kind), m_name(std::move(name)), m_begin(begin), m_end(end),
          m_pos(begin)
    {}

    std::span<const std::byte> m_bytes; // the whole file
    std::string m_label;
    ErrorKind m_kind;
    std::string m_name; // empty for the whole file
    std::string m_context;
    uint64_t m_begin = 0;
    uint64_t m_end = 0;
    uint64_t m_pos = 0;
};

} // namespace novaq
