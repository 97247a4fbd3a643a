#include "novaq/container/manifest.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/io/error.h"
#include "novaq/tensor/tensor.h"

#include <cmath>
#include <limits>
#include <unordered_set>

namespace novaq {

namespace {

using nlohmann::json;

[[noreturn]] void fieldError(const std::string& field, const std::string& message)
{
    throw Error(ErrorKind::Corrupt, "manifest field " + field + ": " + message);
}

std::string found(const json& value) { return ", found " + value.dump(-1, ' ', false, json::error_handler_t::replace); }

const json& require(const json& object, const std::string& where, const char* key)
{
    auto it = object.find(key);
    if (it == object.end())
        fieldError(where + "." + key, "missing");
    return *it;
}

const json& requireObject(const json& object, const std::string& where, const char* key)
{
    const json& v = require(object, where, key);
    if (!v.is_object())
        fieldError(where + "." + key, "expected an object" + found(v));
    return v;
}

std::string requireString(const json& object, const std::string& where, const char* key)
{
    const json& v = require(object, where, key);
    if (!v.is_string())
        fieldError(where + "." + key, "expected a string" + found(v));
    return v.get<std::string>();
}

uint64_t requireUnsigned(const json& object, const std::string& where, const char* key)
{
    const json& v = require(object, where, key);
    if (v.is_number_unsigned())
        return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0)
        return static_cast<uint64_t>(v.get<int64_t>());
    fieldError(where + "." + key, "expected a non-negative integer" + found(v));
}

double requireNumber(const json& object, const std::string& where, const char* key)
{
    const json& v = require(object, where, key);
    if (!v.is_number())
        fieldError(where + "." + key, "expected a number" + found(v));
    return v.get<double>();
}

bool requireBool(const json& object, const std::string& where, const char* key)
{
    const json& v = require(object, where, key);
    if (!v.is_boolean())
        fieldError(where + "." + key, "expected true or false" + found(v));
    return v.get<bool>();
}

// JSON has no infinity; an exact tensor's SQNR is stored as 999 (job.h).
double finiteOr999(double v) { return std::isfinite(v) ? v : 999.0; }

// Product of `shape`, or nullopt-like -1 on overflow.
int64_t checkedProduct(const std::vector<int64_t>& shape, size_t from)
{
    int64_t n = 1;
    for (size_t i = from; i < shape.size(); ++i) {
        if (shape[i] != 0 && n > std::numeric_limits<int64_t>::max() / shape[i])
            return -1;
        n *= shape[i];
    }
    return n;
}

} // namespace

json TensorRecord::toJson() const
{
    json j;
    j["name"] = name;
    j["shape"] = shape;
    j["source_dtype"] = sourceDtype;
    if (encoding == TensorEncoding::Novaq) {
        j["encoding"] = "novaq";
        json c = codecConfigToJson(codec); // d, b1, b2, subspaces (codec_spec.h)
        c["col_scale"] = colScale;
        j["codec"] = std::move(c);
    } else if (encoding == TensorEncoding::Gguf) {
        j["encoding"] = "gguf";
        j["dtype"] = std::string(ggml ? ggml->name : std::string_view());
    } else {
        j["encoding"] = "raw";
        j["dtype"] = std::string(dtypeInfo(dtype).name);
    }
    j["data"] = data.toJson();
    j["stats"] = json{{"rel_error", relError},
                      {"sqnr_db", finiteOr999(sqnrDb)},
                      {"effective_bits", effectiveBits},
                      {"bytes_in", bytesIn},
                      {"bytes_out", bytesOut}};
    if (outputError >= 0)
        j["stats"]["output_error"] = outputError;
    return j;
}

TensorRecord TensorRecord::fromJson(const json& j, const std::string& where)
{
    if (!j.is_object())
        fieldError(where, "expected an object" + found(j));
    TensorRecord r;
    r.name = requireString(j, where, "name");
    if (r.name.empty())
        fieldError(where + ".name", "empty tensor name");

    const json& shape = require(j, where, "shape");
    if (!shape.is_array())
        fieldError(where + ".shape", "expected an array of integers" + found(shape));
    for (size_t i = 0; i < shape.size(); ++i) {
        const json& dim = shape[i];
        const std::string field = where + ".shape[" + std::to_string(i) + "]";
        if (dim.is_number_unsigned() &&
            dim.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            r.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
        else if (dim.is_number_integer() && !dim.is_number_unsigned())
            r.shape.push_back(dim.get<int64_t>());
        else
            fieldError(field, "expected an integer" + found(dim));
    }

    r.sourceDtype = requireString(j, where, "source_dtype");
    const std::string encoding = requireString(j, where, "encoding");
    if (encoding == "novaq") {
        r.encoding = TensorEncoding::Novaq;
        const json& codec = requireObject(j, where, "codec");
        const std::string cw = where + ".codec";
        // d, b1, b2 and subspaces, each inside kCodecLimits (the limits the writer checked).
        r.codec = codecConfigFromJson(codec, "manifest field " + cw, ErrorKind::Corrupt);
        r.colScale = requireBool(codec, cw, "col_scale");
    } else if (encoding == "raw") {
        r.encoding = TensorEncoding::Raw;
        const std::string dtype = requireString(j, where, "dtype");
        const std::optional<DType> type = dtypeFromName(dtype);
        if (!type)
            fieldError(where + ".dtype", "unknown element type \"" + dtype + "\"");
        r.dtype = *type;
    } else if (encoding == "gguf") {
        r.encoding = TensorEncoding::Gguf;
        const std::string type = requireString(j, where, "dtype");
        r.ggml = ggmlTypeByName(type);
        if (!r.ggml || r.ggml->dtype || !r.ggml->supported())
            fieldError(where + ".dtype", "\"" + type + "\" is not a GGUF block type this build decodes (" +
                                             supportedGgmlTypeNames() + ")");
    } else {
        fieldError(where + ".encoding", "expected \"novaq\", \"raw\" or \"gguf\", found \"" + encoding + "\"");
    }

    r.data = SectionRef::fromJson(require(j, where, "data"), "manifest field " + where + ".data");

    const json& stats = requireObject(j, where, "stats");
    const std::string sw = where + ".stats";
    r.relError = requireNumber(stats, sw, "rel_error");
    r.sqnrDb = requireNumber(stats, sw, "sqnr_db");
    r.effectiveBits = requireNumber(stats, sw, "effective_bits");
    r.bytesIn = requireUnsigned(stats, sw, "bytes_in");
    r.bytesOut = requireUnsigned(stats, sw, "bytes_out");
    if (auto it = stats.find("output_error"); it != stats.end()) {
        if (!it->is_number() || it->get<double>() < 0)
            fieldError(sw + ".output_error", "expected a number >= 0");
        r.outputError = it->get<double>();
    }
    return r;
}

namespace {

constexpr uint64_t kHeader = 64, kTrailer = 64;

// tensors[i] parsed; a newer writer's encodings are not corruption: the error then says which
// version to update to.
TensorRecord recordAt(const json& manifest, const json& entry, const std::string& where)
{
    try {
        return TensorRecord::fromJson(entry, where);
    } catch (const Error& e) {
        const json* version = manifest.contains("version") ? &manifest["version"] : nullptr;
        if (version && version->is_array() && version->size() == 2 && (*version)[1].is_number_integer() &&
            (*version)[1].get<int64_t>() > kNovaqNewestMinor)
            throw Error(e.kind(), std::string(e.what()) + " (the file is format " + (*version)[0].dump() + "." +
                                      (*version)[1].dump() + ", newer than this build's " +
                                      std::to_string(kNovaqMajor) + "." + std::to_string(kNovaqNewestMinor) +
                                      ": update NOVAQ Studio)");
        throw;
    }
}

// The element count of r's shape. A zero size is legal (a tensor with no elements, as
// safetensors allows); quantized tensors need at least one row and one column.
int64_t checkedElementCount(const TensorRecord& r, const std::string& label)
{
    for (size_t k = 0; k < r.shape.size(); ++k)
        if (r.shape[k] < 0 || (r.shape[k] == 0 && r.encoding == TensorEncoding::Novaq))
            fieldError(
                label + ".shape[" + std::to_string(k) + "]",
                std::string(r.encoding == TensorEncoding::Novaq ? "expected a positive size" : "expected a size >= 0") +
                    ", found " + std::to_string(r.shape[k]));
    const int64_t numel = checkedProduct(r.shape, 0);
    if (numel < 0)
        fieldError(label + ".shape", "the element count overflows");
    return numel;
}

// r's data section lies inside the data area [kHeader, dataEnd) and is aligned.
void checkSection(const TensorRecord& r, const std::string& label, uint64_t dataEnd)
{
    if (r.data.offset < kHeader || r.data.offset > dataEnd || r.data.length > dataEnd - r.data.offset)
        fieldError(label + ".data", "section at offset " + std::to_string(r.data.offset) + " (length " +
                                        std::to_string(r.data.length) + ") lies outside the data area [" +
                                        std::to_string(kHeader) + ", " + std::to_string(dataEnd) + ")");
    if (r.data.offset % kNovaqAlign != 0)
        fieldError(label + ".data.offset",
                   std::to_string(r.data.offset) + " is not a multiple of " + std::to_string(kNovaqAlign));
}

// The byte length r's encoding and shape need.
uint64_t expectedLength(const TensorRecord& r, const std::string& label, int64_t numel)
{
    if (r.encoding == TensorEncoding::Novaq) {
        if (r.shape.empty())
            fieldError(label + ".shape", "a quantized tensor needs at least one dimension");
        const int64_t rows = r.shape[0];
        const int64_t cols = checkedProduct(r.shape, 1);
        return payloadBytes(rows, cols, r.codec, r.colScale);
    }
    if (r.encoding == TensorEncoding::Gguf) {
        // As the GGUF reader checks a tensor info: the innermost dimension (GGUF's ne[0])
        // holds whole blocks; the length is blocks times block bytes, overflow-checked.
        const GgmlTypeTraits& type = *r.ggml;
        if (r.shape.empty())
            fieldError(label + ".shape", "a " + std::string(type.name) + " tensor needs at least one dimension");
        if (r.shape.back() % type.blockSize != 0)
            fieldError(label + ".shape[" + std::to_string(r.shape.size() - 1) + "]",
                       std::to_string(r.shape.back()) + " is not a multiple of the " + std::string(type.name) +
                           " block size " + std::to_string(type.blockSize));
        const uint64_t blocks = static_cast<uint64_t>(numel) / type.blockSize;
        if (blocks > std::numeric_limits<uint64_t>::max() / type.blockBytes)
            fieldError(label + ".shape", "the byte count overflows");
        return blocks * type.blockBytes;
    }
    const uint64_t bytes = dtypeInfo(r.dtype).bytes;
    if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / bytes)
        fieldError(label + ".shape", "the byte count overflows");
    return static_cast<uint64_t>(numel) * bytes;
}

} // namespace

std::vector<TensorRecord> tensorRecords(const json& manifest, uint64_t fileSize)
{
    if (!manifest.is_object())
        throw Error(ErrorKind::Corrupt, "manifest: expected a JSON object");
    auto it = manifest.find("tensors");
    if (it == manifest.end())
        fieldError("tensors", "missing");
    if (!it->is_array())
        fieldError("tensors", "expected an array" + std::string(it->is_null() ? ", found null" : ""));
    const uint64_t dataEnd = fileSize >= kHeader + kTrailer ? fileSize - kTrailer : 0;

    std::vector<TensorRecord> records;
    records.reserve(it->size());
    std::unordered_set<std::string> names;
    for (size_t i = 0; i < it->size(); ++i) {
        const std::string where = "tensors[" + std::to_string(i) + "]";
        TensorRecord r = recordAt(manifest, (*it)[i], where);
        const std::string label = where + " (\"" + r.name + "\")";
        if (!names.insert(r.name).second)
            fieldError(label + ".name", "duplicate tensor name");
        const int64_t numel = checkedElementCount(r, label);
        checkSection(r, label, dataEnd);
        const uint64_t expected = expectedLength(r, label, numel);
        if (r.data.length != expected)
            fieldError(label + ".data.length", "expected " + std::to_string(expected) + " bytes for shape " +
                                                   shapeToString(r.shape) + ", found " + std::to_string(r.data.length));
        records.push_back(std::move(r));
    }
    return records;
}

} // namespace novaq
