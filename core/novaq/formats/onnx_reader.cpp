#include "novaq/formats/onnx_reader.h"

#include "novaq/formats/mapped_model_reader.h"
#include "novaq/formats/model_files.h"
#include "novaq/formats/protobuf_wire.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"
#include "novaq/io/utf8.h"

#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace novaq {

namespace fs = std::filesystem;
using nlohmann::json;
using protobuf::Field;
using protobuf::WireReader;
using protobuf::WireType;

namespace {

// The parser descends at most ModelProto > GraphProto > TensorProto > StringStringEntryProto
// (depth 4); nested graphs (If/Loop bodies), nodes and functions are skipped by length and
// never parsed, so hostile nesting cannot recurse.
constexpr size_t kMaxRank = 8;
constexpr uint64_t kMaxInitializers = 1'000'000; // real models hold thousands
constexpr uint64_t kMaxIrVersion = 100;          // ONNX 1.17 writes ir_version 10

// Field numbers from onnx/onnx.proto.
struct ModelField {
    static constexpr uint32_t kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDomain = 4, kModelVersion = 5,
                              kDocString = 6, kGraph = 7, kOpsetImport = 8, kMetadataProps = 14, kTrainingInfo = 20,
                              kFunctions = 25;
};
struct GraphField {
    static constexpr uint32_t kNode = 1, kName = 2, kInitializer = 5, kSparseInitializer = 15;
};
struct TensorField {
    static constexpr uint32_t kDims = 1, kDataType = 2, kSegment = 3, kFloatData = 4, kInt32Data = 5, kStringData = 6,
                              kInt64Data = 7, kName = 8, kRawData = 9, kDoubleData = 10, kUint64Data = 11,
                              kExternalData = 13, kDataLocation = 14;
};
constexpr uint64_t kLocationExternal = 1;

std::string_view modelFieldName(uint32_t number) noexcept
{
    switch (number) {
    case ModelField::kIrVersion:
        return "ir_version";
    case ModelField::kProducerName:
        return "producer_name";
    case ModelField::kProducerVersion:
        return "producer_version";
    case ModelField::kDomain:
        return "domain";
    case ModelField::kModelVersion:
        return "model_version";
    case ModelField::kDocString:
        return "doc_string";
    case ModelField::kGraph:
        return "graph";
    case ModelField::kOpsetImport:
        return "opset_import";
    case ModelField::kMetadataProps:
        return "metadata_props";
    case ModelField::kTrainingInfo:
        return "training_info";
    case ModelField::kFunctions:
        return "functions";
    default:
        return {};
    }
}

std::string_view graphFieldName(uint32_t number) noexcept
{
    switch (number) {
    case GraphField::kNode:
        return "node";
    case GraphField::kName:
        return "name";
    case GraphField::kInitializer:
        return "initializer";
    case GraphField::kSparseInitializer:
        return "sparse_initializer";
    default:
        return {};
    }
}

std::string_view tensorFieldName(uint32_t number) noexcept
{
    switch (number) {
    case TensorField::kDims:
        return "dims";
    case TensorField::kDataType:
        return "data_type";
    case TensorField::kSegment:
        return "segment";
    case TensorField::kFloatData:
        return "float_data";
    case TensorField::kInt32Data:
        return "int32_data";
    case TensorField::kStringData:
        return "string_data";
    case TensorField::kInt64Data:
        return "int64_data";
    case TensorField::kName:
        return "name";
    case TensorField::kRawData:
        return "raw_data";
    case TensorField::kDoubleData:
        return "double_data";
    case TensorField::kUint64Data:
        return "uint64_data";
    case TensorField::kExternalData:
        return "external_data";
    case TensorField::kDataLocation:
        return "data_location";
    default:
        return {};
    }
}

std::string_view entryFieldName(uint32_t number) noexcept
{
    return number == 1 ? "key" : number == 2 ? "value" : std::string_view();
}

std::string_view opsetFieldName(uint32_t number) noexcept
{
    return number == 1 ? "domain" : number == 2 ? "version" : std::string_view();
}

// The typed field that holds a data type's values when raw_data is not used.
enum class TypedField : uint8_t { None, FloatData, Int32Data, Int64Data, DoubleData };

uint32_t typedFieldNumber(TypedField field) noexcept
{
    switch (field) {
    case TypedField::FloatData:
        return TensorField::kFloatData;
    case TypedField::Int32Data:
        return TensorField::kInt32Data;
    case TypedField::Int64Data:
        return TensorField::kInt64Data;
    case TypedField::DoubleData:
        return TensorField::kDoubleData;
    case TypedField::None:
        break;
    }
    return 0;
}

// onnx.proto TensorProto.DataType, indexed by id. dtype empty: a type we do not read.
struct OnnxType {
    int32_t id;
    std::string_view name;
    std::optional<DType> dtype;
    TypedField typed;
};

constexpr std::array<OnnxType, 27> kOnnxTypes{{
    {0, "UNDEFINED", std::nullopt, TypedField::None},
    {1, "FLOAT", DType::F32, TypedField::FloatData},
    {2, "UINT8", DType::U8, TypedField::Int32Data},
    {3, "INT8", DType::I8, TypedField::Int32Data},
    {4, "UINT16", std::nullopt, TypedField::Int32Data},
    {5, "INT16", DType::I16, TypedField::Int32Data},
    {6, "INT32", DType::I32, TypedField::Int32Data},
    {7, "INT64", DType::I64, TypedField::Int64Data},
    {8, "STRING", std::nullopt, TypedField::None},
    {9, "BOOL", DType::Bool, TypedField::Int32Data},
    {10, "FLOAT16", DType::F16, TypedField::Int32Data},
    {11, "DOUBLE", DType::F64, TypedField::DoubleData},
    {12, "UINT32", std::nullopt, TypedField::None},
    {13, "UINT64", std::nullopt, TypedField::None},
    {14, "COMPLEX64", std::nullopt, TypedField::FloatData},
    {15, "COMPLEX128", std::nullopt, TypedField::DoubleData},
    {16, "BFLOAT16", DType::BF16, TypedField::Int32Data},
    {17, "FLOAT8E4M3FN", std::nullopt, TypedField::Int32Data},
    {18, "FLOAT8E4M3FNUZ", std::nullopt, TypedField::Int32Data},
    {19, "FLOAT8E5M2", std::nullopt, TypedField::Int32Data},
    {20, "FLOAT8E5M2FNUZ", std::nullopt, TypedField::Int32Data},
    {21, "UINT4", std::nullopt, TypedField::Int32Data},
    {22, "INT4", std::nullopt, TypedField::Int32Data},
    {23, "FLOAT4E2M1", std::nullopt, TypedField::Int32Data},
    {24, "FLOAT8E8M0", std::nullopt, TypedField::Int32Data},
    {25, "UINT2", std::nullopt, TypedField::Int32Data},
    {26, "INT2", std::nullopt, TypedField::Int32Data},
}};

constexpr bool onnxTypesIndexedById()
{
    for (size_t i = 0; i < kOnnxTypes.size(); ++i)
        if (kOnnxTypes[i].id != static_cast<int32_t>(i))
            return false;
    return true;
}
static_assert(onnxTypesIndexedById(), "kOnnxTypes rows must be indexed by their ONNX id");

const OnnxType* onnxType(int64_t id) noexcept
{
    if (id < 0 || static_cast<uint64_t>(id) >= kOnnxTypes.size())
        return nullptr;
    return &kOnnxTypes[static_cast<size_t>(id)];
}

std::string supportedOnnxTypes()
{
    std::string names;
    for (const OnnxType& t : kOnnxTypes) {
        if (!t.dtype)
            continue;
        if (!names.empty())
            names += ", ";
        names += t.name;
    }
    return names;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Where a tensor's values are.
enum class Source : uint8_t { Empty, Raw, External, Typed };

struct TensorSource {
    Source source = Source::Empty;
    TypedField typed = TypedField::None;
    // The bytes at (fileIndex, offset, nbytes) are the dtype's little-endian layout. Typed
    // varint data and unpacked or split typed fields are decoded on demand instead.
    bool direct = true;
    int64_t onnxType = 0;
    uint64_t messageBegin = 0; // the TensorProto in the model file
    uint64_t messageEnd = 0;
    std::string where; // "<file>: initializer "name" (#3, TensorProto at file offset N)"
};

// A strict non-negative decimal (external_data offset and length).
std::optional<uint64_t> parseDecimal(std::string_view text) noexcept
{
    if (text.empty() || text.size() > 20)
        return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        if (__builtin_mul_overflow(value, uint64_t{10}, &value) ||
            __builtin_add_overflow(value, static_cast<uint64_t>(c - '0'), &value))
            return std::nullopt;
    }
    return value;
}

// Parses a model file into tensors, their sources and metadata.
class OnnxParser {
public:
    explicit OnnxParser(const fs::path& path) : m_file(path.string())
    {
        m_maps.emplace_back(path);
        m_bytes = m_maps.front().bytes();
        fs::path folder = path.parent_path();
        if (folder.empty())
            folder = ".";
        m_folder = folder;
    }

    void parse()
    {
        if (m_bytes.empty())
            throw Error(ErrorKind::InvalidInput, m_file + ": the file is empty; it is truncated or not an ONNX model");
        WireReader model(m_bytes, 0, m_bytes.size(), m_file + ": ModelProto", modelFieldName);
        std::optional<uint64_t> irVersion;
        std::string producerName, producerVersion, domain;
        std::optional<int64_t> modelVersion;
        json opset = json::object();
        json props = json::object();
        bool sawGraph = false;
        Field f;
        while (model.next(f)) {
            switch (f.number) {
            case ModelField::kIrVersion:
                model.expectType(f, WireType::Varint);
                irVersion = f.value;
                break;
            case ModelField::kProducerName:
                producerName = text(model, f);
                break;
            case ModelField::kProducerVersion:
                producerVersion = text(model, f);
                break;
            case ModelField::kDomain:
                domain = text(model, f);
                break;
            case ModelField::kModelVersion:
                model.expectType(f, WireType::Varint);
                modelVersion = static_cast<int64_t>(f.value);
                break;
            case ModelField::kGraph:
                model.expectType(f, WireType::Bytes);
                if (sawGraph)
                    model.failField(f, "appears twice; a model has one graph");
                sawGraph = true;
                parseGraph(f);
                break;
            case ModelField::kOpsetImport:
                model.expectType(f, WireType::Bytes);
                parseOpset(model, f, opset);
                break;
            case ModelField::kMetadataProps: {
                model.expectType(f, WireType::Bytes);
                auto [key, value] = parseEntry(model, f, "metadata_props");
                if (props.contains(key))
                    model.failField(f, "metadata_props key " + quote(key) + " appears twice");
                props[key] = value;
                break;
            }
            default:
                break; // doc_string, training_info, functions, future fields
            }
        }
        if (!sawGraph)
            throw Error(ErrorKind::InvalidInput, m_file + ": ModelProto (file offset 0 to " +
                                                     std::to_string(m_bytes.size()) +
                                                     ") has no graph (field 7), so it holds no weights; the file is "
                                                     "damaged or not an ONNX model");

        json meta = json::object();
        meta["producer_name"] = producerName;
        meta["producer_version"] = producerVersion;
        meta["ir_version"] = irVersion ? json(*irVersion) : json(nullptr);
        meta["opset"] = std::move(opset);
        if (!domain.empty())
            meta["domain"] = domain;
        if (modelVersion)
            meta["model_version"] = *modelVersion;
        if (!m_graphName.empty())
            meta["graph_name"] = m_graphName;
        meta["metadata_props"] = std::move(props);
        m_formatMetadata = std::move(meta);
    }

    std::vector<MappedFile> m_maps; // [0] the model, then external data files
    std::vector<TensorInfo> m_tensors;
    std::vector<TensorSource> m_sources;
    json m_formatMetadata;

private:
    // A string field, checked to be UTF-8 (it goes into JSON).
    std::string text(const WireReader& reader, const Field& f) const
    {
        reader.expectType(f, WireType::Bytes);
        const std::string_view s = reader.text(f);
        if (!isValidUtf8(s))
            reader.failField(f, "is not valid UTF-8 text");
        return std::string(s);
    }

    std::pair<std::string, std::string> parseEntry(const WireReader& parent, const Field& entry,
                                                   std::string_view what) const
    {
        WireReader r(m_bytes, entry.offset, entry.offset + entry.length,
                     parent.where() + " > " + std::string(what) + " (at file offset " + std::to_string(entry.offset) +
                         ")",
                     entryFieldName);
        std::string key, value;
        Field f;
        while (r.next(f)) {
            if (f.number == 1)
                key = text(r, f);
            else if (f.number == 2)
                value = text(r, f);
        }
        return {key, value};
    }

    void parseOpset(const WireReader& parent, const Field& entry, json& opset) const
    {
        WireReader r(m_bytes, entry.offset, entry.offset + entry.length,
                     parent.where() + " > opset_import (at file offset " + std::to_string(entry.offset) + ")",
                     opsetFieldName);
        std::string domain;
        int64_t version = 0;
        Field f;
        while (r.next(f)) {
            if (f.number == 1) {
                domain = text(r, f);
            } else if (f.number == 2) {
                r.expectType(f, WireType::Varint);
                version = static_cast<int64_t>(f.value);
            }
        }
        opset[domain.empty() ? "ai.onnx" : domain] = version;
    }

    void parseGraph(const Field& graph)
    {
        WireReader r(m_bytes, graph.offset, graph.offset + graph.length,
                     m_file + ": ModelProto.graph (GraphProto at file offset " + std::to_string(graph.offset) + ")",
                     graphFieldName);
        uint64_t index = 0;
        Field f;
        while (r.next(f)) {
            switch (f.number) {
            case GraphField::kName:
                m_graphName = text(r, f);
                break;
            case GraphField::kInitializer:
                r.expectType(f, WireType::Bytes);
                if (index >= kMaxInitializers)
                    r.failField(f, "the graph holds more than " + std::to_string(kMaxInitializers) +
                                       " initializers; the file is damaged");
                parseTensor(f, index++);
                break;
            case GraphField::kSparseInitializer:
                throw Error(ErrorKind::Unsupported,
                            r.where() + ": " + r.fieldLabel(f.number) + " at file offset " +
                                std::to_string(f.keyOffset) +
                                ": sparse initializers are not supported; densify the model's weights "
                                "(e.g. onnx's sparse_to_dense) and export it again");
            default:
                break; // nodes, inputs, outputs, value_info: not weights
            }
        }
    }

    struct TypedOccurrences {
        uint64_t count = 0;  // elements
        uint64_t chunks = 0; // fields seen
        Field first;
    };

    // The fields of one TensorProto that say where its values are (pass 2 of parseTensor).
    struct TensorFields {
        std::optional<int64_t> dataType;
        uint64_t dataTypeOffset = 0;
        std::optional<Field> raw;
        std::optional<uint64_t> location;
        std::vector<std::pair<Field, std::pair<std::string, std::string>>> external;
        std::map<uint32_t, TypedOccurrences> typed; // by field number
    };

    [[noreturn]] static void failTensor(const TensorSource& src, const std::string& what)
    {
        throw Error(ErrorKind::InvalidInput, src.where + ": " + what);
    }

    void parseTensor(const Field& message, uint64_t index)
    {
        const uint64_t begin = message.offset;
        const uint64_t end = message.offset + message.length;
        const std::string at = "#" + std::to_string(index) + ", TensorProto at file offset " + std::to_string(begin);
        const std::string name = tensorName(begin, end, at);

        TensorSource src;
        src.where = m_file + ": initializer " + quote(name) + " (" + at + ")";
        src.messageBegin = begin;
        src.messageEnd = end;
        WireReader r(m_bytes, begin, end, src.where, tensorFieldName);
        if (auto it = m_names.find(name); it != m_names.end())
            failTensor(src, "the name is used twice: initializer #" + std::to_string(it->second) +
                                " has it too; the file is damaged");
        m_names.emplace(name, index);

        TensorInfo t;
        t.name = name;
        const TensorFields fields = readTensorFields(r, src, t);
        const OnnxType& type = tensorType(fields, src);
        t.dtype = *type.dtype;
        src.onnxType = *fields.dataType;
        const uint64_t numel = sizeTensor(t, type, src);
        t.fileIndex = 0;
        placeValues(src, t, fields, type, numel);
        m_tensors.push_back(std::move(t));
        m_sources.push_back(std::move(src));
    }

    // Pass 1 of parseTensor: the name, so that every later message names the tensor. A
    // malformed field stops this pass; pass 2 reports it, naming the tensor when its name came first.
    std::string tensorName(uint64_t begin, uint64_t end, const std::string& at)
    {
        std::string name;
        WireReader r(m_bytes, begin, end, m_file + ": initializer " + at, tensorFieldName);
        bool malformed = false;
        bool sawName = false;
        Field f;
        try {
            while (r.next(f)) {
                if (f.number != TensorField::kName)
                    continue;
                if (sawName)
                    r.failField(f, "appears twice");
                sawName = true;
                name = text(r, f);
            }
        } catch (const Error&) {
            if (name.empty())
                throw;
            malformed = true;
        }
        if (name.empty() && !malformed)
            throw Error(ErrorKind::InvalidInput, r.where() + ": the initializer has no name (field 8); the file "
                                                             "is damaged");
        return name;
    }

    // shape: long on purpose (one switch over the TensorProto field numbers, each case a few checks)
    TensorFields readTensorFields(WireReader& r, const TensorSource& src, TensorInfo& t)
    {
        TensorFields fields;
        int nameFields = 0;
        const auto addDim = [&](const Field& f, uint64_t value) {
            if (t.shape.size() >= kMaxRank)
                r.failField(f, "the tensor has more than " + std::to_string(kMaxRank) + " dims; the file is damaged");
            const auto dim = static_cast<int64_t>(value);
            if (dim < 0)
                r.failField(f, "dims[" + std::to_string(t.shape.size()) + "] = " + std::to_string(dim) +
                                   " is negative; the file is damaged");
            t.shape.push_back(dim);
        };

        Field f;
        while (r.next(f)) {
            switch (f.number) {
            case TensorField::kDims:
                if (f.type == WireType::Varint) {
                    addDim(f, f.value);
                } else {
                    r.expectType(f, WireType::Bytes);
                    uint64_t pos = f.offset;
                    const uint64_t stop = f.offset + f.length;
                    while (pos < stop) {
                        uint64_t value = 0;
                        const uint64_t valueAt = pos;
                        if (protobuf::readVarint(m_bytes, pos, stop, value) != protobuf::VarintStatus::Ok)
                            r.failField(f, "the packed varint at file offset " + std::to_string(valueAt) +
                                               " is truncated or longer than 10 bytes");
                        addDim(f, value);
                    }
                }
                break;
            case TensorField::kName:
                if (++nameFields > 1)
                    r.failField(f, "appears twice");
                break;
            case TensorField::kDataType:
                r.expectType(f, WireType::Varint);
                fields.dataType = static_cast<int64_t>(f.value);
                fields.dataTypeOffset = f.keyOffset;
                break;
            case TensorField::kSegment:
                throw Error(ErrorKind::Unsupported, src.where + ": " + r.fieldLabel(f.number) + " at file offset " +
                                                        std::to_string(f.keyOffset) +
                                                        ": segmented tensors are not supported");
            case TensorField::kFloatData:
            case TensorField::kDoubleData:
            case TensorField::kInt32Data:
            case TensorField::kInt64Data:
            case TensorField::kStringData:
            case TensorField::kUint64Data:
                countTyped(r, f, fields.typed[f.number]);
                break;
            case TensorField::kRawData:
                r.expectType(f, WireType::Bytes);
                if (fields.raw)
                    r.failField(f, "appears twice");
                fields.raw = f;
                break;
            case TensorField::kExternalData: {
                r.expectType(f, WireType::Bytes);
                auto entry = parseEntry(r, f, "external_data");
                for (const auto& [other, kv] : fields.external)
                    if (kv.first == entry.first)
                        r.failField(f, "external_data key " + quote(entry.first) + " appears twice");
                fields.external.emplace_back(f, std::move(entry));
                break;
            }
            case TensorField::kDataLocation:
                r.expectType(f, WireType::Varint);
                if (f.value > kLocationExternal)
                    r.failField(f, "data_location " + std::to_string(f.value) +
                                       " is neither DEFAULT (0) nor EXTERNAL (1)");
                fields.location = f.value;
                break;
            default:
                break; // doc_string, metadata_props, future fields
            }
        }
        return fields;
    }

    // The tensor's data type, which must be one this build reads.
    static const OnnxType& tensorType(const TensorFields& fields, const TensorSource& src)
    {
        if (!fields.dataType || *fields.dataType == 0)
            failTensor(src, "field data_type (2) is missing or UNDEFINED; the file is damaged");
        const OnnxType* type = onnxType(*fields.dataType);
        if (!type || !type->dtype)
            throw Error(ErrorKind::Unsupported,
                        src.where + ": field data_type (2) at file offset " + std::to_string(fields.dataTypeOffset) +
                            " is " +
                            (type ? std::string(type->name) + " (" + std::to_string(*fields.dataType) + ")"
                                  : "the unknown type id " + std::to_string(*fields.dataType)) +
                            ", which is not supported (supported: " + supportedOnnxTypes() +
                            "); convert the model's weights to FLOAT, FLOAT16 or BFLOAT16 first");
        return *type;
    }

    // Element count and bytes (t.nbytes), overflow-checked; returns the element count.
    static uint64_t sizeTensor(TensorInfo& t, const OnnxType& type, const TensorSource& src)
    {
        uint64_t numel = 1;
        for (int64_t d : t.shape)
            if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) ||
                numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                failTensor(src, "field dims (1) " + shapeToString(t.shape) +
                                    " has more elements than fit in 64 bits; the "
                                    "file is damaged");
        const uint64_t elementBytes = dtypeInfo(t.dtype).bytes;
        uint64_t nbytes = 0;
        if (__builtin_mul_overflow(numel, elementBytes, &nbytes))
            failTensor(src, "field dims (1) " + shapeToString(t.shape) + " of " + std::string(type.name) +
                                " needs more bytes than fit in 64 bits; the file is damaged");
        t.nbytes = nbytes;
        return numel;
    }

    // Exactly one source of values: external data, raw_data or one typed field; sets where
    // the tensor's bytes are.
    void placeValues(TensorSource& src, TensorInfo& t, const TensorFields& fields, const OnnxType& type, uint64_t numel)
    {
        const uint64_t nbytes = t.nbytes;
        const std::string need = "dims " + shapeToString(t.shape) + " of " + std::string(type.name) + " need " +
                                 std::to_string(nbytes) + " bytes";
        const bool isExternal = fields.location && *fields.location == kLocationExternal;
        std::vector<std::string> sources;
        if (isExternal)
            sources.emplace_back("external data");
        if (fields.raw)
            sources.emplace_back("raw_data (9) at file offset " + std::to_string(fields.raw->keyOffset));
        for (const auto& [number, occ] : fields.typed)
            sources.emplace_back(std::string(tensorFieldName(number)) + " (" + std::to_string(number) +
                                 ") at file offset " + std::to_string(occ.first.keyOffset));
        if (sources.size() > 1)
            failTensor(src, "holds its values in both " + sources[0] + " and " + sources[1] +
                                "; exactly one source is allowed, the file is damaged");
        if (!fields.external.empty() && !isExternal)
            failTensor(src, "field external_data (13) at file offset " +
                                std::to_string(fields.external.front().first.keyOffset) +
                                " is set, but data_location is not EXTERNAL (1); the file is damaged");

        if (isExternal) {
            src.source = Source::External;
            resolveExternal(src, t, fields.external, nbytes, need);
        } else if (fields.raw) {
            src.source = Source::Raw;
            if (fields.raw->length != nbytes)
                failTensor(src, "field raw_data (9) at file offset " + std::to_string(fields.raw->keyOffset) +
                                    " holds " + std::to_string(fields.raw->length) + " bytes, but " + need +
                                    "; the file is damaged");
            t.offset = fields.raw->offset;
        } else if (!fields.typed.empty()) {
            placeTyped(src, t, *fields.typed.begin(), type, numel);
        } else if (numel != 0) {
            failTensor(src, "has no values: neither raw_data, a typed field nor external data holds the " +
                                std::to_string(numel) + " elements of dims " + shapeToString(t.shape) +
                                "; the file is damaged");
        } else {
            t.offset = src.messageBegin;
        }
    }

    // Values in a typed field (float_data, int32_data, ...): the one the type uses, holding
    // every element.
    static void placeTyped(TensorSource& src, TensorInfo& t, const std::pair<const uint32_t, TypedOccurrences>& typed,
                           const OnnxType& type, uint64_t numel)
    {
        const auto& [number, occ] = typed;
        const std::string label = std::string(tensorFieldName(number)) + " (" + std::to_string(number) + ")";
        if (number != typedFieldNumber(type.typed))
            failTensor(src, "field " + label + " at file offset " + std::to_string(occ.first.keyOffset) +
                                " cannot hold values of " + std::string(type.name) + " (they belong in " +
                                std::string(tensorFieldName(typedFieldNumber(type.typed))) + "); the file is damaged");
        if (occ.count != numel)
            failTensor(src, "field " + label + " at file offset " + std::to_string(occ.first.keyOffset) + " holds " +
                                std::to_string(occ.count) + " values, but dims " + shapeToString(t.shape) + " need " +
                                std::to_string(numel) + "; the file is damaged");
        src.source = Source::Typed;
        src.typed = type.typed;
        // Packed float and double values in one field are already the little-endian layout.
        src.direct = (src.typed == TypedField::FloatData || src.typed == TypedField::DoubleData) && occ.chunks == 1 &&
                     occ.first.type == WireType::Bytes;
        t.offset = src.direct ? occ.first.offset : src.messageBegin;
    }

    // Counts the values of one occurrence of a typed field (packed or not).
    void countTyped(const WireReader& r, const Field& f, TypedOccurrences& occ) const
    {
        if (occ.chunks == 0)
            occ.first = f;
        ++occ.chunks;
        const bool fixed32 = f.number == TensorField::kFloatData;
        const bool fixed64 = f.number == TensorField::kDoubleData;
        if (f.type == WireType::Bytes && f.number == TensorField::kStringData) {
            ++occ.count;
            return;
        }
        if (f.type == WireType::Bytes) {
            if (fixed32 || fixed64) {
                const uint64_t width = fixed32 ? 4 : 8;
                if (f.length % width != 0)
                    r.failField(f, "its packed length " + std::to_string(f.length) + " is not a multiple of " +
                                       std::to_string(width) + " bytes; the file is damaged");
                occ.count += f.length / width;
                return;
            }
            uint64_t count = 0, bad = 0;
            if (!protobuf::countPackedVarints(m_bytes, f.offset, f.offset + f.length, count, bad))
                r.failField(f, "the packed varint at file offset " + std::to_string(bad) +
                                   " is truncated or longer than 10 bytes; the file is damaged");
            occ.count += count;
            return;
        }
        r.expectType(f, fixed32 ? WireType::Fixed32 : fixed64 ? WireType::Fixed64 : WireType::Varint);
        ++occ.count;
    }

    // The external data file `location` names: a relative POSIX path confined to the model's
    // folder, to a regular file (symbolic links resolved, and they must stay inside too).
    fs::path externalFile(const TensorSource& src, const std::string& label, const std::string& location) const
    {
        const auto fail = [&](ErrorKind kind, const std::string& what) { throw Error(kind, src.where + ": " + what); };
        if (location.empty())
            fail(ErrorKind::InvalidInput, label + " is empty; the file is damaged");
        if (location.find('\0') != std::string::npos)
            fail(ErrorKind::InvalidInput, label + " contains a NUL byte; refusing to read it");
        if (location.front() == '/' || location.front() == '\\')
            fail(ErrorKind::InvalidInput, label + " is an absolute path; external data must sit in the model's "
                                                  "folder, refusing to read outside it");
        for (size_t start = 0; start <= location.size();) {
            size_t stop = location.find_first_of("/\\", start);
            if (stop == std::string::npos)
                stop = location.size();
            if (std::string_view(location).substr(start, stop - start) == "..")
                fail(ErrorKind::InvalidInput, label + " has a '..' component; external data must sit in the "
                                                      "model's folder, refusing to read outside it");
            start = stop + 1;
        }

        std::error_code ec;
        const fs::path folder = fs::canonical(m_folder, ec);
        if (ec)
            fail(ErrorKind::Io, "cannot resolve the model's folder " + m_folder.string() + ": " + ec.message());
        const fs::path target = m_folder / location;
        if (!fs::exists(fs::symlink_status(target, ec)))
            fail(ErrorKind::Io,
                 label + ": the external data file " + target.string() + " does not exist; copy it beside the model");
        const fs::path resolved = fs::canonical(target, ec);
        if (ec)
            fail(ErrorKind::Io,
                 label + ": cannot resolve " + target.string() + ": " + ec.message() + " (a dangling symbolic link?)");
        const fs::path relative = resolved.lexically_relative(folder);
        if (relative.empty() || relative == "." || *relative.begin() == "..")
            fail(ErrorKind::InvalidInput, label + " resolves through a symbolic link to " + resolved.string() +
                                              ", outside the model's folder " + folder.string() +
                                              "; refusing to read it (copy the data file into the folder)");
        if (!fs::is_regular_file(resolved, ec))
            fail(ErrorKind::InvalidInput, label + " (" + resolved.string() + ") is not a regular file");
        return resolved;
    }

    void resolveExternal(TensorSource& src, TensorInfo& t,
                         const std::vector<std::pair<Field, std::pair<std::string, std::string>>>& external,
                         uint64_t nbytes, const std::string& need)
    {
        std::optional<std::string> location;
        std::optional<std::string> offsetText, lengthText;
        for (const auto& [field, kv] : external) {
            if (kv.first == "location")
                location = kv.second;
            else if (kv.first == "offset")
                offsetText = kv.second;
            else if (kv.first == "length")
                lengthText = kv.second;
            // "checksum" (SHA-1) and unknown keys are ignored.
        }
        const auto fail = [&](ErrorKind kind, const std::string& what) { throw Error(kind, src.where + ": " + what); };
        if (!location)
            fail(ErrorKind::InvalidInput, "data_location is EXTERNAL but external_data (13) has no \"location\" key; "
                                          "the file is damaged");
        const std::string label = "external_data location " + quote(*location);
        const fs::path resolved = externalFile(src, label, *location);

        uint64_t offset = 0;
        if (offsetText) {
            const std::optional<uint64_t> v = parseDecimal(*offsetText);
            if (!v)
                fail(ErrorKind::InvalidInput, "external_data offset " + quote(*offsetText) +
                                                  " is not a non-negative decimal integer; the file is damaged");
            offset = *v;
        }
        uint64_t length = nbytes;
        if (lengthText) {
            const std::optional<uint64_t> v = parseDecimal(*lengthText);
            if (!v)
                fail(ErrorKind::InvalidInput, "external_data length " + quote(*lengthText) +
                                                  " is not a non-negative decimal integer; the file is damaged");
            length = *v;
            if (length != nbytes)
                fail(ErrorKind::InvalidInput, "external_data length " + std::to_string(length) + " (in " + label +
                                                  "), but " + need + "; the file is damaged");
        }

        const std::string key = resolved.string();
        auto it = m_externalIndex.find(key);
        if (it == m_externalIndex.end()) {
            if (m_maps.size() >= std::numeric_limits<uint32_t>::max())
                fail(ErrorKind::InvalidInput, "too many external data files");
            m_maps.emplace_back(resolved);
            it = m_externalIndex.emplace(key, static_cast<uint32_t>(m_maps.size() - 1)).first;
        }
        const MappedFile& data = m_maps[it->second];
        uint64_t stop = 0;
        if (__builtin_add_overflow(offset, length, &stop) || stop > data.size())
            fail(ErrorKind::InvalidInput, "external_data offset " + std::to_string(offset) + " + length " +
                                              std::to_string(length) + " runs past the end of " + data.path().string() +
                                              " (" + std::to_string(data.size()) + " bytes, " + label +
                                              "); the data file is truncated, download it again");
        t.fileIndex = it->second;
        t.offset = offset;
        src.direct = true;
    }

    std::string m_file;
    fs::path m_folder;
    std::span<const std::byte> m_bytes;
    std::string m_graphName;
    std::unordered_map<std::string, uint64_t> m_names;         // initializer name -> index
    std::unordered_map<std::string, uint32_t> m_externalIndex; // canonical path -> file index
};

class OnnxModel final : public MappedModelReader {
public:
    OnnxModel(std::vector<MappedFile> maps, std::vector<TensorInfo> tensors, std::vector<TensorSource> sources,
              json metadata)
        : MappedModelReader(ModelFormat::Onnx, std::move(maps), std::move(tensors), std::move(metadata)),
          m_sources(std::move(sources))
    {}

    void readFloat(size_t index, std::span<float> out) const override
    {
        const TensorInfo& t = tensor(index);
        const auto numel = static_cast<uint64_t>(t.numel());
        if (out.size() != numel)
            throw Error(ErrorKind::InvalidArgument, m_sources[index].where + " has " + std::to_string(numel) +
                                                        " elements, but the output holds " +
                                                        std::to_string(out.size()));
        if (numel == 0)
            return;
        if (m_sources[index].direct) {
            convertToFloat(t.dtype, fileData(t) + t.offset, static_cast<size_t>(numel), out.data());
            return;
        }
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_decoded.find(index); it != m_decoded.end()) {
                convertToFloat(t.dtype, it->second.data(), static_cast<size_t>(numel), out.data());
                return;
            }
        }
        const std::vector<std::byte> bytes = decode(index);
        convertToFloat(t.dtype, bytes.data(), static_cast<size_t>(numel), out.data());
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorInfo& t = tensor(index);
        if (t.nbytes == 0)
            return {};
        if (m_sources[index].direct)
            return {fileData(t) + t.offset, static_cast<size_t>(t.nbytes)};
        // Typed values are decoded once and kept until release().
        std::lock_guard lock(m_mutex);
        auto it = m_decoded.find(index);
        if (it == m_decoded.end())
            it = m_decoded.emplace(index, decode(index)).first;
        return it->second;
    }

    void release(size_t index) const noexcept override
    {
        if (index >= m_tensors.size())
            return;
        const TensorInfo& t = m_tensors[index];
        const TensorSource& src = m_sources[index];
        if (src.direct) {
            m_maps[t.fileIndex].release(t.offset, t.nbytes);
            return;
        }
        {
            std::lock_guard lock(m_mutex);
            m_decoded.erase(index);
        }
        m_maps[0].release(src.messageBegin, src.messageEnd - src.messageBegin);
    }

private:
    // Typed values in the dtype's little-endian layout.
    // shape: long on purpose (one pass over the typed fields; its lambdas share the value count every error names)
    std::vector<std::byte> decode(size_t index) const
    {
        const TensorInfo& t = m_tensors[index];
        const TensorSource& src = m_sources[index];
        const uint32_t number = typedFieldNumber(src.typed);
        const uint64_t numel = static_cast<uint64_t>(t.numel());
        const uint32_t width = dtypeInfo(t.dtype).bytes;
        std::vector<std::byte> out(static_cast<size_t>(t.nbytes));
        const std::span<const std::byte> bytes = m_maps[0].bytes();
        uint64_t n = 0;
        const auto fail = [&](uint64_t offset, const std::string& what) {
            throw Error(ErrorKind::InvalidInput, src.where + ": " + std::string(tensorFieldName(number)) + " (" +
                                                     std::to_string(number) + ") value " + std::to_string(n) +
                                                     " at file offset " + std::to_string(offset) + ": " + what);
        };
        const auto room = [&](uint64_t offset) {
            if (n >= numel)
                fail(offset, "more values than dims " + shapeToString(t.shape) + " hold; the file changed while open");
        };
        const auto putInteger = [&](uint64_t raw, uint64_t offset) {
            room(offset);
            std::byte* p = out.data() + n * width;
            if (src.typed == TypedField::Int64Data) {
                storeLe(p, static_cast<int64_t>(raw));
            } else {
                // int32 fields: varints of the value sign-extended to 64 bits; protobuf keeps the low 32.
                const auto v = static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(raw)));
                const auto check = [&](int64_t lo, int64_t hi, const char* what) {
                    if (v < lo || v > hi)
                        fail(offset, std::to_string(v) + " is out of range for " + what + "; the file is damaged");
                };
                switch (t.dtype) {
                case DType::F16:
                case DType::BF16:
                    // Bit patterns; writers store them as uint16, a few sign-extend them.
                    check(-32768, 65535, "a 16-bit float bit pattern");
                    storeLe(p, static_cast<uint16_t>(v));
                    break;
                case DType::I8:
                    check(-128, 127, "INT8");
                    storeLe(p, static_cast<int8_t>(v));
                    break;
                case DType::U8:
                    check(0, 255, "UINT8");
                    storeLe(p, static_cast<uint8_t>(v));
                    break;
                case DType::I16:
                    check(-32768, 32767, "INT16");
                    storeLe(p, static_cast<int16_t>(v));
                    break;
                case DType::Bool:
                    check(0, 1, "BOOL");
                    storeLe(p, static_cast<uint8_t>(v));
                    break;
                default:
                    storeLe(p, static_cast<int32_t>(v));
                    break;
                }
            }
            ++n;
        };

        WireReader r(bytes, src.messageBegin, src.messageEnd, src.where, tensorFieldName);
        Field f;
        while (r.next(f)) {
            if (f.number != number)
                continue;
            if (src.typed == TypedField::FloatData || src.typed == TypedField::DoubleData) {
                if (f.type == WireType::Bytes) {
                    const uint64_t count = f.length / width;
                    if (count > numel - n)
                        fail(f.offset, "more values than dims " + shapeToString(t.shape) + " hold");
                    std::memcpy(out.data() + n * width, bytes.data() + f.offset, static_cast<size_t>(count * width));
                    n += count;
                } else {
                    room(f.keyOffset);
                    if (width == 4)
                        storeLe(out.data() + n * width, static_cast<uint32_t>(f.value));
                    else
                        storeLe(out.data() + n * width, f.value);
                    ++n;
                }
            } else if (f.type == WireType::Bytes) {
                uint64_t pos = f.offset;
                const uint64_t stop = f.offset + f.length;
                while (pos < stop) {
                    const uint64_t valueAt = pos;
                    uint64_t value = 0;
                    if (protobuf::readVarint(bytes, pos, stop, value) != protobuf::VarintStatus::Ok)
                        fail(valueAt, "the varint is truncated or longer than 10 bytes");
                    putInteger(value, valueAt);
                }
            } else {
                putInteger(f.value, f.keyOffset);
            }
        }
        if (n != numel)
            fail(src.messageEnd, "only " + std::to_string(n) + " values, but dims " + shapeToString(t.shape) +
                                     " need " + std::to_string(numel) + "; the file changed while open");
        return out;
    }

    std::vector<TensorSource> m_sources;
    mutable std::mutex m_mutex;
    mutable std::map<size_t, std::vector<std::byte>> m_decoded; // typed tensors handed out by rawBytes()
};

} // namespace

bool sniffOnnx(std::span<const std::byte> head, uint64_t fileSize) noexcept
{
    using protobuf::VarintStatus;
    if (head.size() < 2 || fileSize < head.size() || head[0] != std::byte{0x08})
        return false;
    uint64_t pos = 1;
    uint64_t irVersion = 0;
    if (protobuf::readVarint(head, pos, head.size(), irVersion) != VarintStatus::Ok || irVersion == 0 ||
        irVersion > kMaxIrVersion)
        return false;
    while (pos < head.size()) {
        uint64_t key = 0;
        if (protobuf::readVarint(head, pos, head.size(), key) != VarintStatus::Ok)
            return false;
        const uint64_t number = key >> 3;
        const uint64_t type = key & 7;
        switch (number) {
        case ModelField::kModelVersion:
            if (type != 0)
                return false;
            if (uint64_t v = 0; protobuf::readVarint(head, pos, head.size(), v) != VarintStatus::Ok)
                return false;
            break;
        case ModelField::kProducerName:
        case ModelField::kProducerVersion:
        case ModelField::kDomain:
        case ModelField::kDocString:
        case ModelField::kGraph:
        case ModelField::kOpsetImport:
        case ModelField::kMetadataProps: {
            uint64_t length = 0;
            if (type != 2 || protobuf::readVarint(head, pos, head.size(), length) != VarintStatus::Ok)
                return false;
            // The graph or the opsets after ir_version: an ONNX model. A truncated graph still
            // goes to the reader, which says where the file ends.
            if (number == ModelField::kGraph || number == ModelField::kOpsetImport)
                return true;
            if (length > fileSize - pos)
                return false;
            pos += length;
            if (pos > head.size()) // a long string running past the head, within the file
                return true;
            break;
        }
        default:
            return false;
        }
    }
    return false;
}

std::unique_ptr<ModelReader> openOnnx(const fs::path& path)
{
    OnnxParser parser(path);
    parser.parse();
    json config =
        readConfigJson(parser.m_maps.front().path().parent_path().empty() ? fs::path(".")
                                                                          : parser.m_maps.front().path().parent_path());
    json meta = json::object();
    meta["format_metadata"] = std::move(parser.m_formatMetadata);
    meta["architecture"] = "unknown";
    if (config.is_object())
        if (auto type = config.find("model_type"); type != config.end() && type->is_string())
            meta["architecture"] = *type;
    meta["config"] = std::move(config);
    return std::make_unique<OnnxModel>(std::move(parser.m_maps), std::move(parser.m_tensors),
                                       std::move(parser.m_sources), std::move(meta));
}

} // namespace novaq
