#include "novaq/formats/safetensors_reader.h"

#include "novaq/formats/mapped_model_reader.h"
#include "novaq/formats/model_files.h"
#include "novaq/io/byte_cursor.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

namespace novaq {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000; // as the reference implementation (MAX_HEADER_SIZE)
constexpr size_t kMaxRank = 8;

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

[[noreturn]] void fail(const fs::path& file, const std::string& what)
{
    throw Error(ErrorKind::InvalidInput, file.string() + ": " + what);
}

std::string supportedDTypes()
{
    std::string names;
    for (const DTypeInfo& info : allDTypes()) {
        if (!names.empty())
            names += ", ";
        names += info.name;
    }
    return names;
}

std::string offsetsToString(uint64_t begin, uint64_t end)
{
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

struct ParsedFile {
    std::vector<TensorInfo> tensors; // in file offset order
    json formatMetadata = json::object();
};

void checkMetadata(const fs::path& file, const json& meta)
{
    if (!meta.is_object())
        fail(file, "__metadata__ must be an object of string values, found " + std::string(meta.type_name()));
    for (const auto& [key, value] : meta.items())
        if (!value.is_string())
            fail(file,
                 "__metadata__ field " + quote(key) + " must be a string, found " + std::string(value.type_name()));
}

struct Span {
    uint64_t begin = 0; // relative to the byte buffer
    uint64_t end = 0;
};

TensorInfo parseTensor(const fs::path& file, const std::string& name, const json& entry, uint64_t bufferStart,
                       uint64_t bufferSize, Span& span)
{
    const auto bad = [&](const std::string& what) { fail(file, "tensor " + quote(name) + ": " + what); };

    if (!entry.is_object())
        bad("must be an object with dtype, shape and data_offsets, found " + std::string(entry.type_name()));
    for (const auto& [key, value] : entry.items())
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            bad("unexpected field " + quote(key) + " (a tensor has exactly dtype, shape and data_offsets)");
    for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(field))
            bad("missing field " + quote(field));

    TensorInfo t;
    t.name = name;

    const json& dtype = entry["dtype"];
    if (!dtype.is_string())
        bad("field dtype must be a string, found " + std::string(dtype.type_name()));
    const std::optional<DType> type = dtypeFromName(dtype.get_ref<const std::string&>());
    if (!type)
        bad("dtype " + quote(dtype.get_ref<const std::string&>()) +
            " is not supported (supported: " + supportedDTypes() + "); convert the model to F16, BF16 or F32 first");
    t.dtype = *type;

    const json& shape = entry["shape"];
    if (!shape.is_array())
        bad("field shape must be an array of non-negative integers, found " + std::string(shape.type_name()));
    if (shape.size() > kMaxRank)
        bad("field shape has rank " + std::to_string(shape.size()) + ", more than the supported " +
            std::to_string(kMaxRank));
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < shape.size(); ++i) {
        const json& d = shape[i];
        if (!d.is_number_unsigned())
            bad("field shape[" + std::to_string(i) + "] must be a non-negative integer, found " +
                (d.is_number() ? d.dump() : std::string(d.type_name())));
        const uint64_t dim = d.get<uint64_t>();
        if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            bad("field shape[" + std::to_string(i) + "] = " + std::to_string(dim) + " is too large");
        t.shape.push_back(static_cast<int64_t>(dim));
        overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
    }
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad("field shape " + shape.dump() + " has more elements than fit in 64 bits");

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
        bad("field data_offsets must be [begin, end] with two non-negative integers, found " + offsets.dump());
    span.begin = offsets[0].get<uint64_t>();
    span.end = offsets[1].get<uint64_t>();
    if (span.begin > span.end)
        bad("field data_offsets " + offsetsToString(span.begin, span.end) + " begins after it ends");

    const uint64_t elementBytes = dtypeInfo(t.dtype).bytes;
    uint64_t expected = 0;
    if (__builtin_mul_overflow(numel, elementBytes, &expected))
        bad("field shape " + shape.dump() + " of " + std::string(dtypeInfo(t.dtype).name) +
            " needs more bytes than fit in 64 bits");
    if (span.end - span.begin != expected)
        bad("field data_offsets " + offsetsToString(span.begin, span.end) + " spans " +
            std::to_string(span.end - span.begin) + " bytes, but shape " + shapeToString(t.shape) + " of " +
            std::string(dtypeInfo(t.dtype).name) + " needs " + std::to_string(expected) + " bytes");
    if (span.end > bufferSize)
        bad("field data_offsets " + offsetsToString(span.begin, span.end) + " ends at file offset " +
            std::to_string(bufferStart + span.end) + ", past the end of the file (" +
            std::to_string(bufferStart + bufferSize) + " bytes); the file is truncated, download it again");

    t.offset = bufferStart + span.begin;
    t.nbytes = expected;
    return t;
}

// The JSON header: its 8-byte length at offset 0, then the text, which must be a JSON object.
json readHeader(const MappedFile& map, uint64_t& headerBytes)
{
    const fs::path& file = map.path();
    const uint64_t size = map.size();
    ByteCursor cursor(map.bytes(), file.string());
    if (size < 8)
        fail(file, "the file is " + std::to_string(size) +
                       " bytes, shorter than the 8-byte header length at offset 0; it is truncated or not a "
                       "safetensors file");
    headerBytes = cursor.read<uint64_t>("header length");
    if (headerBytes > kMaxHeaderBytes)
        fail(file, "header length " + std::to_string(headerBytes) + " (file offset 0) exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes; the file is damaged or not a safetensors file");
    if (headerBytes > cursor.remaining())
        fail(file, "header length " + std::to_string(headerBytes) + " (file offset 0) runs past the end of the file (" +
                       std::to_string(size) + " bytes); the file is truncated, download it again");
    const std::string_view text = cursor.readBytes(headerBytes, "the JSON header");
    if (headerBytes < 2 || text[0] != '{')
        fail(file, "the JSON header at file offset 8 does not start with '{'; the file is damaged or not a "
                   "safetensors file");

    json header = parseJsonStrict(text, file, 8, "the header");
    if (!header.is_object())
        fail(file, "the header must be a JSON object, found " + std::string(header.type_name()));
    return header;
}

// The tensors in offset order (ties: end, then name). The byte buffer must be covered
// exactly: in that order each tensor begins where the previous one ended, and the last one
// ends at the end of the file.
std::vector<size_t> coveringOrder(const fs::path& file, const std::vector<TensorInfo>& tensors,
                                  const std::vector<Span>& spans, uint64_t bufferStart, uint64_t bufferSize,
                                  uint64_t size)
{
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (spans[a].begin != spans[b].begin)
            return spans[a].begin < spans[b].begin;
        if (spans[a].end != spans[b].end)
            return spans[a].end < spans[b].end;
        return tensors[a].name < tensors[b].name;
    });
    uint64_t previousEnd = 0;
    const TensorInfo* previous = nullptr;
    Span previousSpan;
    for (size_t i : order) {
        const Span& span = spans[i];
        const TensorInfo& t = tensors[i];
        if (span.begin < previousEnd)
            fail(file, "tensors " + quote(previous->name) + " (data_offsets " +
                           offsetsToString(previousSpan.begin, previousSpan.end) + ") and " + quote(t.name) +
                           " (data_offsets " + offsetsToString(span.begin, span.end) + ") overlap");
        if (span.begin > previousEnd)
            fail(file, "bytes " + std::to_string(previousEnd) + " to " + std::to_string(span.begin) +
                           " of the data (file offset " + std::to_string(bufferStart + previousEnd) +
                           ") belong to no tensor: a hole " +
                           (previous ? "between tensor " + quote(previous->name) + " and tensor " + quote(t.name)
                                     : "before the first tensor " + quote(t.name)) +
                           " (data_offsets " + offsetsToString(span.begin, span.end) + ")");
        previousEnd = span.end;
        previous = &t;
        previousSpan = span;
    }
    if (previousEnd != bufferSize)
        fail(file, std::to_string(bufferSize - previousEnd) + " trailing bytes at file offset " +
                       std::to_string(bufferStart + previousEnd) + " after " +
                       (previous ? "the last tensor " + quote(previous->name) + " (data_offsets " +
                                       offsetsToString(previousSpan.begin, previousSpan.end) + ")"
                                 : std::string("the header (the file lists no tensors)")) +
                       " belong to no tensor; 8 + header length + last data_offsets end must equal the file size " +
                       std::to_string(size));
    return order;
}

ParsedFile parseSafetensorsFile(const MappedFile& map, uint32_t fileIndex)
{
    const fs::path& file = map.path();
    const uint64_t size = map.size();
    uint64_t headerBytes = 0;
    const json header = readHeader(map, headerBytes);
    const uint64_t bufferStart = 8 + headerBytes;
    const uint64_t bufferSize = size - bufferStart;

    ParsedFile parsed;
    std::vector<Span> spans;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            checkMetadata(file, entry);
            parsed.formatMetadata = entry;
            continue;
        }
        Span span;
        TensorInfo t = parseTensor(file, name, entry, bufferStart, bufferSize, span);
        t.fileIndex = fileIndex;
        parsed.tensors.push_back(std::move(t));
        spans.push_back(span);
    }

    const std::vector<size_t> order = coveringOrder(file, parsed.tensors, spans, bufferStart, bufferSize, size);
    std::vector<TensorInfo> sorted;
    sorted.reserve(order.size());
    for (size_t i : order)
        sorted.push_back(std::move(parsed.tensors[i]));
    parsed.tensors = std::move(sorted);
    return parsed;
}

class SafetensorsModel final : public MappedModelReader {
public:
    SafetensorsModel(std::vector<MappedFile> maps, std::vector<TensorInfo> tensors, json metadata)
        : MappedModelReader(ModelFormat::Safetensors, std::move(maps), std::move(tensors), std::move(metadata))
    {}

    void readFloat(size_t index, std::span<float> out) const override
    {
        checkOutputSize(index, out.size());
        const TensorInfo& t = m_tensors[index];
        if (out.empty())
            return;
        convertToFloat(t.dtype, fileData(t) + t.offset, out.size(), out.data());
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorInfo& t = tensor(index);
        if (t.nbytes == 0)
            return {};
        return {fileData(t) + t.offset, static_cast<size_t>(t.nbytes)};
    }
};

// A shard name from an index must be a plain file name inside the index's folder.
} // namespace

bool sniffSafetensors(std::span<const std::byte> head, uint64_t fileSize) noexcept
{
    if (head.size() < 9 || fileSize < 10)
        return false;
    const uint64_t headerBytes = loadLe<uint64_t>(head.data());
    return headerBytes >= 2 && headerBytes <= kMaxHeaderBytes && headerBytes <= fileSize - 8 &&
           head[8] == std::byte{'{'};
}

std::unique_ptr<ModelReader> openSafetensors(const fs::path& path)
{
    std::vector<MappedFile> maps;
    maps.emplace_back(path);
    ParsedFile parsed = parseSafetensorsFile(maps.front(), 0);
    json config = readConfigJson(path.parent_path());
    return std::make_unique<SafetensorsModel>(std::move(maps), std::move(parsed.tensors),
                                              makeModelMetadata(std::move(parsed.formatMetadata), std::move(config)));
}

std::unique_ptr<ModelReader> openSafetensorsIndex(const fs::path& index)
{
    ShardIndex shards(index);
    std::vector<MappedFile> maps;
    std::vector<TensorInfo> tensors;
    json formatMetadata = json::object();
    for (const auto& [shard, listed] : shards.shards()) {
        const auto fileIndex = static_cast<uint32_t>(maps.size());
        maps.emplace_back(shards.shardPath(shard));
        ParsedFile parsed = parseSafetensorsFile(maps.back(), fileIndex);
        if (fileIndex == 0)
            formatMetadata = parsed.formatMetadata;
        for (TensorInfo& t : parsed.tensors) {
            shards.claim(t.name, shard);
            tensors.push_back(std::move(t));
        }
    }
    shards.checkAllFound();
    json metadata = makeModelMetadata(std::move(formatMetadata), readConfigJson(shards.folder()));
    metadata["index_metadata"] = shards.metadata();
    return std::make_unique<SafetensorsModel>(std::move(maps), std::move(tensors), std::move(metadata));
}

} // namespace novaq
