#include "novaq/formats/protobuf_wire.h"

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <utility>

namespace novaq::protobuf {

std::string_view wireTypeName(WireType type) noexcept
{
    switch (type) {
    case WireType::Varint:
        return "varint";
    case WireType::Fixed64:
        return "64-bit";
    case WireType::Bytes:
        return "length-delimited";
    case WireType::StartGroup:
        return "start-group";
    case WireType::EndGroup:
        return "end-group";
    case WireType::Fixed32:
        return "32-bit";
    }
    return "invalid";
}

VarintStatus readVarint(std::span<const std::byte> buffer, uint64_t& pos, uint64_t end, uint64_t& value) noexcept
{
    uint64_t result = 0;
    uint64_t p = pos;
    for (size_t i = 0; i < kMaxVarintBytes; ++i, ++p) {
        if (p >= end || p >= buffer.size())
            return VarintStatus::Truncated;
        const auto byte = static_cast<uint64_t>(buffer[static_cast<size_t>(p)]);
        if (i == kMaxVarintBytes - 1 && byte > 1)
            return VarintStatus::TooLong; // a continuation bit or bits past 64
        result |= (byte & 0x7F) << (7 * i);
        if ((byte & 0x80) == 0) {
            pos = p + 1;
            value = result;
            return VarintStatus::Ok;
        }
    }
    return VarintStatus::TooLong;
}

WireReader::WireReader(std::span<const std::byte> buffer, uint64_t begin, uint64_t end, std::string where,
                       FieldNameFn fieldName)
    : m_buffer(buffer), m_begin(begin), m_end(end), m_pos(begin), m_where(std::move(where)), m_fieldName(fieldName)
{}

std::string WireReader::fieldLabel(uint32_t number) const
{
    const std::string_view name = m_fieldName ? m_fieldName(number) : std::string_view();
    if (name.empty())
        return "field " + std::to_string(number);
    return "field " + std::string(name) + " (" + std::to_string(number) + ")";
}

void WireReader::fail(uint64_t offset, const std::string& what) const
{
    throw Error(ErrorKind::InvalidInput, m_where + ": at file offset " + std::to_string(offset) + ", " + what);
}

void WireReader::failField(const Field& field, const std::string& what) const
{
    throw Error(ErrorKind::InvalidInput, m_where + ": " + fieldLabel(field.number) + " at file offset " +
                                             std::to_string(field.keyOffset) + ": " + what);
}

void WireReader::expectType(const Field& field, WireType expected) const
{
    if (field.type != expected)
        failField(field, "has wire type " + std::string(wireTypeName(field.type)) + ", expected " +
                             std::string(wireTypeName(expected)) + "; the file is damaged or not ONNX");
}

bool WireReader::next(Field& field)
{
    if (m_pos >= m_end)
        return false;
    field = Field{};
    field.keyOffset = m_pos;
    uint64_t key = 0;
    switch (readVarint(m_buffer, m_pos, m_end, key)) {
    case VarintStatus::Ok:
        break;
    case VarintStatus::Truncated:
        fail(field.keyOffset, "a field key is cut off by the end of the message (which ends at file offset " +
                                  std::to_string(m_end) + "); the file is truncated or damaged");
    case VarintStatus::TooLong:
        fail(field.keyOffset, "a field key is a varint longer than 10 bytes; the file is damaged or not ONNX");
    }
    if ((key >> 3) == 0 || (key >> 3) > kMaxFieldNumber)
        fail(field.keyOffset, "field number " + std::to_string(key >> 3) +
                                  " is invalid (1 to 536870911); the file is damaged or not ONNX");
    field.number = static_cast<uint32_t>(key >> 3);
    const auto type = static_cast<uint32_t>(key & 7);
    if (type > 5)
        failField(field, "has the invalid wire type " + std::to_string(type) + "; the file is damaged or not ONNX");
    field.type = static_cast<WireType>(type);

    const uint64_t valueOffset = m_pos;
    const auto need = [&](uint64_t bytes) {
        if (bytes > m_end - m_pos)
            failField(field, "its " + std::to_string(bytes) + "-byte value at file offset " +
                                 std::to_string(valueOffset) + " runs past the end of the message (file offset " +
                                 std::to_string(m_end) + "); the file is truncated or damaged");
    };
    switch (field.type) {
    case WireType::Varint:
    case WireType::Bytes: {
        uint64_t value = 0;
        switch (readVarint(m_buffer, m_pos, m_end, value)) {
        case VarintStatus::Ok:
            break;
        case VarintStatus::Truncated:
            failField(field, "its varint at file offset " + std::to_string(valueOffset) +
                                 " is cut off by the end of the message (file offset " + std::to_string(m_end) +
                                 "); the file is truncated or damaged");
        case VarintStatus::TooLong:
            failField(field, "its varint at file offset " + std::to_string(valueOffset) +
                                 " is longer than 10 bytes; the file is damaged or not ONNX");
        }
        if (field.type == WireType::Varint) {
            field.value = value;
            break;
        }
        if (value > m_end - m_pos)
            failField(field, "its length " + std::to_string(value) + " (at file offset " + std::to_string(valueOffset) +
                                 ") runs past the end of the enclosing message: " + std::to_string(m_end - m_pos) +
                                 " bytes remain before file offset " + std::to_string(m_end) +
                                 "; the file is truncated or damaged");
        field.offset = m_pos;
        field.length = value;
        m_pos += value;
        break;
    }
    case WireType::Fixed64:
        need(8);
        field.value = loadLe<uint64_t>(m_buffer.data() + m_pos);
        m_pos += 8;
        break;
    case WireType::Fixed32:
        need(4);
        field.value = loadLe<uint32_t>(m_buffer.data() + m_pos);
        m_pos += 4;
        break;
    case WireType::StartGroup:
    case WireType::EndGroup:
        failField(field, "uses the deprecated group wire type, which ONNX never writes; the file is damaged or "
                         "not ONNX");
    }
    return true;
}

std::span<const std::byte> WireReader::bytes(const Field& field) const noexcept
{
    return m_buffer.subspan(static_cast<size_t>(field.offset), static_cast<size_t>(field.length));
}

std::string_view WireReader::text(const Field& field) const noexcept
{
    const std::span<const std::byte> b = bytes(field);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool countPackedVarints(std::span<const std::byte> buffer, uint64_t begin, uint64_t end, uint64_t& count,
                        uint64_t& badOffset) noexcept
{
    count = 0;
    uint64_t pos = begin;
    while (pos < end) {
        // Fast path: a one-byte varint.
        if ((static_cast<unsigned>(buffer[static_cast<size_t>(pos)]) & 0x80) == 0) {
            ++pos;
            ++count;
            continue;
        }
        uint64_t value = 0;
        const uint64_t at = pos;
        if (readVarint(buffer, pos, end, value) != VarintStatus::Ok) {
            badOffset = at;
            return false;
        }
        ++count;
    }
    return true;
}

} // namespace novaq::protobuf
