#pragma once
// A minimal reader of the protobuf wire format (key = field << 3 | wire type; varint,
// 64-bit, length-delimited and 32-bit values), walking one message of a memory-mapped file
// field by field without copying it.
//
// Why hand-written instead of Debian's libprotobuf: libprotobuf needs onnx.proto compiled
// into the build and parses a whole message into memory (and refuses messages over 2 GB),
// while an ONNX model's GraphProto is the whole file: we must stream a 10 GB model from an
// mmap, record where each tensor's bytes are and never touch them until they are read.
// Only what a reader of weights needs is here: a cursor over one message's fields and
// helpers for packed repeated scalars. Every length is checked against the bytes left in
// the enclosing message, and a varint longer than 10 bytes is refused.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace novaq::protobuf {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

std::string_view wireTypeName(WireType type) noexcept;

constexpr size_t kMaxVarintBytes = 10;
constexpr uint32_t kMaxFieldNumber = (1u << 29) - 1;

enum class VarintStatus { Ok, Truncated, TooLong };

// Reads a varint at `pos` (an index into `buffer`) that must end before `end`; on Ok `pos`
// moves past it. TooLong: more than 10 bytes, or a 10th byte that overflows 64 bits.
VarintStatus readVarint(std::span<const std::byte> buffer, uint64_t& pos, uint64_t end, uint64_t& value) noexcept;

// One field of a message. Offsets index the buffer the reader walks (the whole file).
struct Field {
    uint32_t number = 0;
    WireType type = WireType::Varint;
    uint64_t keyOffset = 0; // where the key starts
    uint64_t value = 0;     // Varint, Fixed64 and Fixed32 values (fixed values as their bits)
    uint64_t offset = 0;    // Bytes: where the payload starts
    uint64_t length = 0;    // Bytes: payload length
};

// Names the fields of one message type in error messages ("raw_data (9)").
using FieldNameFn = std::string_view (*)(uint32_t number) noexcept;

// A cursor over the fields of the message in [begin, end) of `buffer`. Malformed bytes throw
// Error(InvalidInput) whose message starts with `where` (the file and the message path) and
// names the field and the file offset.
class WireReader {
public:
    WireReader(std::span<const std::byte> buffer, uint64_t begin, uint64_t end, std::string where,
               FieldNameFn fieldName = nullptr);

    // The next field, or false at the end of the message.
    bool next(Field& field);

    uint64_t begin() const noexcept { return m_begin; }
    uint64_t end() const noexcept { return m_end; }
    const std::string& where() const noexcept { return m_where; }
    std::span<const std::byte> buffer() const noexcept { return m_buffer; }

    std::span<const std::byte> bytes(const Field& field) const noexcept;
    std::string_view text(const Field& field) const noexcept;

    // "field raw_data (9)" or "field 9".
    std::string fieldLabel(uint32_t number) const;

    // Throws Error(InvalidInput): "<where>: at file offset <offset>, <what>".
    [[noreturn]] void fail(uint64_t offset, const std::string& what) const;
    // As fail(), about `field`, naming it: "<where>: field x (n) at file offset o: <what>".
    [[noreturn]] void failField(const Field& field, const std::string& what) const;

    // Requires `field` to have wire type `expected`, else fails naming both types.
    void expectType(const Field& field, WireType expected) const;

private:
    std::span<const std::byte> m_buffer;
    uint64_t m_begin;
    uint64_t m_end;
    uint64_t m_pos;
    std::string m_where;
    FieldNameFn m_fieldName;
};

// Elements of a packed repeated varint field (the payload of `field`): each varint is
// checked. On failure returns false with `badOffset` set to the offending varint.
bool countPackedVarints(std::span<const std::byte> buffer, uint64_t begin, uint64_t end, uint64_t& count,
                        uint64_t& badOffset) noexcept;

} // namespace novaq::protobuf
