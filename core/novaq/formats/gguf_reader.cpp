#include "novaq/formats/gguf_reader.h"

#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/mapped_model_reader.h"
#include "novaq/io/byte_cursor.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"
#include "novaq/io/utf8.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace novaq {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Every length in a GGUF file is hostile until checked: against the bytes that remain and
// against these caps, which are far above anything llama.cpp writes.
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxKeyValues = uint64_t{1} << 20;
constexpr uint64_t kMaxKeyBytes = uint64_t{1} << 16;
constexpr uint64_t kMaxNameBytes = uint64_t{1} << 16;
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxArrayCount = uint64_t{1} << 26;
constexpr uint64_t kArrayReserve = uint64_t{1} << 16;
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4; // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr uint64_t kHeaderBytes = 24; // magic, version, tensor_count, metadata_kv_count

// Smallest encodings, to bound counts by the bytes that remain.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;           // key length, value type, a one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8; // name length, n_dims, one dim, type, offset

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};
constexpr uint32_t kValueTypeCount = 13;

std::string_view valueTypeName(ValueType type) noexcept
{
    static constexpr std::string_view kNames[kValueTypeCount] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                                 "bool", "string", "array", "u64", "i64", "f64"};
    const auto i = static_cast<uint32_t>(type);
    return i < kValueTypeCount ? kNames[i] : "?";
}

uint64_t minValueBytes(ValueType type) noexcept
{
    switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::Bool:
        return 1;
    case ValueType::U16:
    case ValueType::I16:
        return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
        return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
    case ValueType::String:
        return 8;
    case ValueType::Array:
        return 12;
    }
    return 1;
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// GGUF's reader over the mapped file: the shared bounds-checked cursor (io/byte_cursor.h) with
// GGUF's strings, counts, value types and values; errors also name the array elements being
// read.
class Parser : public ByteCursor {
public:
    explicit Parser(const MappedFile& map)
        : ByteCursor(std::span<const std::byte>(map.data(), map.size()), map.path().string()), m_map(map)
    {}

    const fs::path& path() const noexcept { return m_map.path(); }

    float readF32(std::string_view field) { return read<float>(field); }
    double readF64(std::string_view field) { return read<double>(field); }

    // gguf_string: u64 length, then the bytes.
    std::string readString(std::string_view field, uint64_t maxBytes)
    {
        const uint64_t at = pos();
        const auto length = read<uint64_t>(std::string(field) + " length");
        if (length > maxBytes)
            fail(std::string(field) + " length " + std::to_string(length) + " exceeds the limit of " +
                     std::to_string(maxBytes) + " bytes",
                 at);
        if (length > remaining())
            fail(std::string(field) + " length " + std::to_string(length) + " runs past the end of the file (" +
                     std::to_string(remaining()) +
                     " bytes remain); the file is truncated or damaged, download or "
                     "copy it again",
                 at);
        return std::string(readBytes(length, field));
    }

    // A count of `minBytes`-byte items that must fit in the bytes that remain and under `cap`.
    uint64_t readCount(std::string_view field, uint64_t minBytes, uint64_t cap)
    {
        const uint64_t at = pos();
        const auto count = read<uint64_t>(field);
        if (count > cap)
            fail(std::string(field) + " " + std::to_string(count) + " exceeds the limit of " + std::to_string(cap), at);
        if (count > remaining() / minBytes)
            fail(std::string(field) + " " + std::to_string(count) + " needs at least " +
                     std::to_string(count * minBytes) + " bytes, but only " + std::to_string(remaining()) +
                     " remain in the file; the file is truncated or damaged, download or copy it again",
                 at);
        return count;
    }

    ValueType readValueType(std::string_view field)
    {
        const uint64_t at = pos();
        const auto type = read<uint32_t>(field);
        if (type >= kValueTypeCount)
            fail(std::string(field) + " " + std::to_string(type) + " is unknown (GGUF value types are 0 to " +
                     std::to_string(kValueTypeCount - 1) + ")",
                 at);
        return static_cast<ValueType>(type);
    }

    json readValue(ValueType type, int depth)
    {
        switch (type) {
        case ValueType::U8:
            return read<uint8_t>("u8 value");
        case ValueType::I8:
            return read<int8_t>("i8 value");
        case ValueType::U16:
            return read<uint16_t>("u16 value");
        case ValueType::I16:
            return read<int16_t>("i16 value");
        case ValueType::U32:
            return read<uint32_t>("u32 value");
        case ValueType::I32:
            return read<int32_t>("i32 value");
        case ValueType::U64:
            return read<uint64_t>("u64 value");
        case ValueType::I64:
            return read<int64_t>("i64 value");
        case ValueType::F32:
            return readF32("f32 value");
        case ValueType::F64:
            return readF64("f64 value");
        case ValueType::Bool: {
            const uint64_t at = pos();
            const auto b = read<uint8_t>("bool value");
            if (b > 1)
                fail("bool value " + std::to_string(b) + " is neither 0 nor 1", at);
            return b == 1;
        }
        case ValueType::String:
            return sanitizeUtf8(readString("string", kMaxStringBytes));
        case ValueType::Array:
            return readArray(depth);
        }
        fail("value type " + std::to_string(static_cast<uint32_t>(type)) + " is unknown", pos());
    }

private:
    json readArray(int depth)
    {
        if (depth >= kMaxArrayDepth)
            fail("arrays are nested deeper than " + std::to_string(kMaxArrayDepth) + " levels", pos());
        const ValueType elementType = readValueType("array element type");
        const uint64_t count = readCount("array count", minValueBytes(elementType), kMaxArrayCount);
        json array = json::array();
        auto& elements = array.get_ref<json::array_t&>();
        elements.reserve(static_cast<size_t>(std::min<uint64_t>(count, kArrayReserve))); // grows as bytes are read
        m_elements.push_back(0);
        for (uint64_t i = 0; i < count; ++i) {
            m_elements.back() = i;
            elements.push_back(readValue(elementType, depth + 1));
        }
        m_elements.pop_back();
        return array;
    }

    std::string where() const override
    {
        std::string where = ByteCursor::where();
        for (uint64_t element : m_elements)
            where += (where.empty() ? "" : " ") + std::string("element ") + std::to_string(element);
        return where;
    }

    const MappedFile& m_map;
    std::vector<uint64_t> m_elements; // indices of the arrays being read, outermost first
};

struct ParsedTensor {
    TensorInfo info;
    const GgmlTypeTraits* type = nullptr;
    uint64_t relOffset = 0; // relative to the data section
    uint64_t infoAt = 0;    // file offset of its tensor info, for messages
    size_t index = 0;
};

struct ParsedGguf {
    uint32_t version = 0;
    json keyValues = json::object();
    uint64_t alignment = kDefaultAlignment;
    uint64_t dataStart = 0;
    std::vector<ParsedTensor> tensors;
};

std::string knownTypeNames()
{
    std::string names;
    for (const GgmlTypeTraits& row : ggmlTypeTable())
        names += (names.empty() ? "" : ", ") + std::string(row.name);
    return names;
}

std::string tensorLabel(size_t index, std::string_view name)
{
    return "tensor " + std::to_string(index) + " " + quote(name);
}

void parseHeader(Parser& p, ParsedGguf& out)
{
    p.setContext("header");
    p.need(4, "magic");
    static constexpr std::byte kMagic[4] = {std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}};
    const auto magic = p.read<uint32_t>("magic");
    if (magic != loadLe<uint32_t>(kMagic))
        p.fail("the magic is not \"GGUF\"; this is not a GGUF file", 0);
    const auto version = p.read<uint32_t>("version");
    if (version != 0 && (version & 0xFFFF) == 0)
        throw Error(ErrorKind::Unsupported,
                    p.path().string() + ": header: the version field at offset 4 reads as " + std::to_string(version) +
                        ", so the file is a big-endian GGUF; only little-endian GGUF files are supported "
                        "(convert it on a little-endian machine with llama.cpp's tools)");
    if (version == 1)
        p.fail("version 1 is not supported (GGUF v1 used 32-bit counts and is obsolete); convert the file to GGUF "
               "v3 with a current llama.cpp",
               4);
    if (version != 2 && version != 3)
        p.fail("version " + std::to_string(version) + " is unknown; this reader understands GGUF versions 2 and 3", 4);
    out.version = version;
}

void parseKeyValues(Parser& p, ParsedGguf& out, uint64_t count, uint64_t& alignmentAt, bool& hasAlignment)
{
    std::unordered_set<std::string> seen;
    for (uint64_t i = 0; i < count; ++i) {
        const uint64_t keyAt = p.pos();
        p.setContext("metadata key " + std::to_string(i));
        std::string key = p.readString("key", kMaxKeyBytes);
        if (!isValidUtf8(key))
            p.fail("key is not valid UTF-8", keyAt);
        p.setContext("metadata key " + std::to_string(i) + " " + quote(key));
        if (!seen.insert(key).second)
            p.fail("the key appears twice; duplicate keys are not allowed", keyAt);
        const ValueType type = p.readValueType("value type");
        const uint64_t valueAt = p.pos();
        json value = p.readValue(type, 0);
        if (key == "general.alignment") {
            if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0))
                p.fail("general.alignment must be an unsigned integer, found a " + std::string(valueTypeName(type)),
                       valueAt);
            const uint64_t alignment = value.get<uint64_t>();
            if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > kMaxAlignment)
                p.fail("general.alignment is " + std::to_string(alignment) +
                           "; it must be a power of two no larger than " + std::to_string(kMaxAlignment),
                       valueAt);
            out.alignment = alignment;
            alignmentAt = valueAt;
            hasAlignment = true;
        }
        out.keyValues[key] = std::move(value);
    }
}

void parseTensorInfos(Parser& p, ParsedGguf& out, uint64_t count)
{
    std::unordered_map<std::string, size_t> names;
    out.tensors.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
        ParsedTensor t;
        t.index = static_cast<size_t>(i);
        t.infoAt = p.pos();
        p.setContext("tensor " + std::to_string(i));
        std::string name = p.readString("name", kMaxNameBytes);
        if (name.empty())
            p.fail("the name is empty", t.infoAt);
        if (!isValidUtf8(name))
            p.fail("the name is not valid UTF-8", t.infoAt);
        const std::string label = tensorLabel(t.index, name);
        p.setContext(label);
        if (auto [it, inserted] = names.emplace(name, t.index); !inserted)
            p.fail("the name is also the name of tensor " + std::to_string(it->second) +
                       "; duplicate tensor names are not allowed",
                   t.infoAt);

        const uint64_t dimsAt = p.pos();
        const auto nDims = p.read<uint32_t>("n_dims");
        if (nDims == 0 || nDims > kMaxDims)
            p.fail("n_dims is " + std::to_string(nDims) + "; it must be 1 to " + std::to_string(kMaxDims), dimsAt);
        uint64_t ne[kMaxDims] = {1, 1, 1, 1};
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nDims; ++d) {
            const uint64_t at = p.pos();
            ne[d] = p.read<uint64_t>("dimension " + std::to_string(d));
            if (ne[d] == 0)
                p.fail("dimension " + std::to_string(d) + " is 0", at);
            if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                p.fail("dimension " + std::to_string(d) + " is " + std::to_string(ne[d]) + ", too large", at);
            if (__builtin_mul_overflow(numel, ne[d], &numel) ||
                numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                p.fail("dimension " + std::to_string(d) + " (" + std::to_string(ne[d]) +
                           ") makes the element count overflow 63 bits",
                       at);
        }
        const uint64_t typeAt = p.pos();
        const auto typeId = p.read<uint32_t>("type");
        t.type = ggmlTypeTraits(typeId);
        if (!t.type)
            p.fail("ggml type id " + std::to_string(typeId) +
                       " is unknown (a newer or damaged file; known types: " + knownTypeNames() + ")",
                   typeAt);
        if (ne[0] % t.type->blockSize != 0)
            p.fail("dimension 0 (" + std::to_string(ne[0]) + ") is not a multiple of the " + std::string(t.type->name) +
                       " block size " + std::to_string(t.type->blockSize),
                   dimsAt + 4);
        uint64_t nbytes = ne[0] / t.type->blockSize;
        bool overflow = __builtin_mul_overflow(nbytes, uint64_t{t.type->blockBytes}, &nbytes);
        for (uint32_t d = 1; d < nDims; ++d)
            overflow = overflow || __builtin_mul_overflow(nbytes, ne[d], &nbytes);
        if (overflow)
            p.fail("the byte size of shape " + std::to_string(numel) + " elements of " + std::string(t.type->name) +
                       " overflows 64 bits",
                   dimsAt);

        const uint64_t offsetAt = p.pos();
        t.relOffset = p.read<uint64_t>("data offset");
        if (t.relOffset % out.alignment != 0)
            p.fail("data offset " + std::to_string(t.relOffset) + " is not a multiple of the alignment " +
                       std::to_string(out.alignment),
                   offsetAt);

        t.info.name = std::move(name);
        for (uint32_t d = nDims; d-- > 0;)
            t.info.shape.push_back(static_cast<int64_t>(ne[d]));
        if (t.type->dtype) {
            t.info.dtype = *t.type->dtype;
        } else {
            t.info.dtype = DType::F32;
            t.info.storage = std::string(t.type->name);
        }
        t.info.nbytes = nbytes;
        t.info.fileIndex = 0;
        out.tensors.push_back(std::move(t));
    }
}

// Places the data section, then checks every tensor lies inside it and none overlap.
void placeTensors(Parser& p, ParsedGguf& out)
{
    const uint64_t infosEnd = p.pos();
    out.dataStart = (infosEnd + out.alignment - 1) / out.alignment * out.alignment;
    const uint64_t dataBytes = out.dataStart <= p.size() ? p.size() - out.dataStart : 0;

    for (ParsedTensor& t : out.tensors) {
        p.setContext(tensorLabel(t.index, t.info.name));
        if (t.relOffset > dataBytes || t.info.nbytes > dataBytes - t.relOffset)
            p.fail("data offset " + std::to_string(t.relOffset) + " + " + std::to_string(t.info.nbytes) +
                       " bytes (file offset " + std::to_string(out.dataStart) + " + " + std::to_string(t.relOffset) +
                       ") runs past the end of the file (" + std::to_string(p.size()) +
                       " bytes; the data section starts at " + std::to_string(out.dataStart) +
                       "); the file is truncated or damaged",
                   t.infoAt);
        t.info.offset = out.dataStart + t.relOffset;
    }

    std::vector<size_t> order(out.tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return out.tensors[a].relOffset != out.tensors[b].relOffset
                   ? out.tensors[a].relOffset < out.tensors[b].relOffset
                   : a < b;
    });
    for (size_t k = 1; k < order.size(); ++k) {
        const ParsedTensor& prev = out.tensors[order[k - 1]];
        const ParsedTensor& t = out.tensors[order[k]];
        if (t.relOffset < prev.relOffset + prev.info.nbytes) {
            p.setContext(tensorLabel(t.index, t.info.name));
            p.fail("data [" + std::to_string(t.relOffset) + ", " + std::to_string(t.relOffset + t.info.nbytes) +
                       ") overlaps " + tensorLabel(prev.index, prev.info.name) + " (data [" +
                       std::to_string(prev.relOffset) + ", " + std::to_string(prev.relOffset + prev.info.nbytes) +
                       ")); offsets are relative to the data section at file offset " + std::to_string(out.dataStart),
                   t.infoAt);
        }
    }
}

ParsedGguf parseGguf(const MappedFile& map)
{
    Parser p(map);
    ParsedGguf out;
    parseHeader(p, out);
    const uint64_t tensorCount = p.readCount("tensor_count", kMinTensorInfoBytes, kMaxTensors);
    const uint64_t kvCount = p.readCount("metadata_kv_count", kMinKeyValueBytes, kMaxKeyValues);
    uint64_t alignmentAt = 0;
    bool hasAlignment = false;
    parseKeyValues(p, out, kvCount, alignmentAt, hasAlignment);
    if (tensorCount > p.remaining() / kMinTensorInfoBytes) {
        p.setContext("header");
        p.fail("tensor_count " + std::to_string(tensorCount) + " needs at least " +
                   std::to_string(tensorCount * kMinTensorInfoBytes) + " bytes of tensor infos, but only " +
                   std::to_string(p.remaining()) +
                   " remain after the metadata; the file is truncated or damaged, download or copy it again",
               8);
    }
    parseTensorInfos(p, out, tensorCount);
    placeTensors(p, out);
    return out;
}

class GgufModel final : public MappedModelReader {
public:
    GgufModel(MappedFile map, ParsedGguf parsed)
        : MappedModelReader(ModelFormat::Gguf, single(std::move(map)), infos(parsed), metadataOf(parsed))
    {
        m_types.reserve(parsed.tensors.size());
        for (const ParsedTensor& t : parsed.tensors)
            m_types.push_back(t.type);
    }

    void readFloat(size_t index, std::span<float> out) const override
    {
        const TensorInfo& t = tensor(index);
        const GgmlTypeTraits& type = *m_types[index];
        const auto numel = static_cast<uint64_t>(t.numel());
        if (out.size() != numel)
            throw Error(ErrorKind::InvalidArgument, label(index) + " has " + std::to_string(numel) +
                                                        " elements, but the output holds " +
                                                        std::to_string(out.size()));
        if (!type.supported())
            throw Error(
                ErrorKind::Unsupported,
                label(index) + " is stored as " + std::string(type.name) +
                    ", which cannot be converted to float yet (supported GGUF types: " + supportedGgmlTypeNames() +
                    "); requantize the model to one of them with llama-quantize, or start from its F16 "
                    "or F32 GGUF");
        dequantizeGgml(type, fileData(t) + t.offset, static_cast<size_t>(numel), out.data());
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorInfo& t = tensor(index);
        return {fileData(t) + t.offset, static_cast<size_t>(t.nbytes)};
    }

private:
    static std::vector<MappedFile> single(MappedFile map)
    {
        std::vector<MappedFile> maps;
        maps.push_back(std::move(map));
        return maps;
    }

    static std::vector<TensorInfo> infos(const ParsedGguf& parsed)
    {
        std::vector<TensorInfo> out;
        out.reserve(parsed.tensors.size());
        for (const ParsedTensor& t : parsed.tensors)
            out.push_back(t.info);
        return out;
    }

    static json metadataOf(ParsedGguf& parsed)
    {
        json meta = json::object();
        if (auto it = parsed.keyValues.find("general.architecture"); it != parsed.keyValues.end() && it->is_string())
            meta["architecture"] = *it;
        meta["format_metadata"] = std::move(parsed.keyValues);
        meta["config"] = nullptr;
        meta["gguf_version"] = parsed.version;
        return meta;
    }

    std::string label(size_t index) const
    {
        return m_files.front().string() + ": " + tensorLabel(index, m_tensors[index].name);
    }

    std::vector<const GgmlTypeTraits*> m_types; // row of each tensor's ggml type
};

} // namespace

bool sniffGguf(std::span<const std::byte> head, uint64_t /*fileSize*/) noexcept
{
    return head.size() >= 4 && head[0] == std::byte{'G'} && head[1] == std::byte{'G'} && head[2] == std::byte{'U'} &&
           head[3] == std::byte{'F'};
}

std::unique_ptr<ModelReader> openGguf(const fs::path& path)
{
    MappedFile map(path);
    ParsedGguf parsed = parseGguf(map);
    return std::make_unique<GgufModel>(std::move(map), std::move(parsed));
}

} // namespace novaq
