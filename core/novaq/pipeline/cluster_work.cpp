#include "novaq/pipeline/cluster_work.h"

#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/cluster.h"

#include <cstring>
#include <string>

namespace novaq {

namespace {

template <typename T>
void put(std::vector<std::byte>& out, const T& value)
{
    // resize + memcpy: GCC 12 warns falsely (stringop-overflow) on insert of a few bytes.
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

template <typename T>
T take(std::span<const std::byte>& in)
{
    T value{};
    if (in.size() < sizeof(T))
        internalError("a tensor message from another rank is truncated");
    std::memcpy(&value, in.data(), sizeof(T));
    in = in.subspan(sizeof(T));
    return value;
}

} // namespace

std::vector<std::byte> packOutcome(const TensorOutcome& o)
{
    std::vector<std::byte> out;
    out.reserve(64 + o.payload.size());
    put(out, static_cast<uint8_t>(o.rec.encoding));
    put(out, static_cast<uint8_t>(o.rec.dtype));
    for (int v : {o.rec.codec.d, o.rec.codec.b1, o.rec.codec.b2, o.rec.codec.subspaces})
        put(out, static_cast<int32_t>(v));
    put(out, static_cast<uint8_t>(o.rec.colScale));
    for (double v : {o.rec.relError, o.rec.outputError, o.unrefinedOutputError, o.seconds})
        put(out, v);
    put(out, static_cast<uint64_t>(o.payload.size()));
    const size_t at = out.size();
    out.resize(at + o.payload.size());
    if (!o.payload.empty())
        std::memcpy(out.data() + at, o.payload.data(), o.payload.size());
    return out;
}

TensorOutcome unpackOutcome(std::span<const std::byte> in)
{
    TensorOutcome o;
    o.rec.encoding = static_cast<TensorEncoding>(take<uint8_t>(in));
    o.rec.dtype = static_cast<DType>(take<uint8_t>(in));
    o.rec.codec.d = take<int32_t>(in);
    o.rec.codec.b1 = take<int32_t>(in);
    o.rec.codec.b2 = take<int32_t>(in);
    o.rec.codec.subspaces = take<int32_t>(in);
    o.rec.colScale = take<uint8_t>(in) != 0;
    o.rec.relError = take<double>(in);
    o.rec.outputError = take<double>(in);
    o.unrefinedOutputError = take<double>(in);
    o.seconds = take<double>(in);
    const auto n = take<uint64_t>(in);
    if (in.size() != n)
        internalError("a tensor message from another rank has the wrong size");
    o.payload.assign(in.begin(), in.end());
    return o;
}

std::unique_ptr<ModelReader> openOnEveryRank(const std::filesystem::path& input, const CancelToken* cancel)
{
    Cluster& ranks = cluster();
    if (ranks.single())
        return openModel(input);
    std::unique_ptr<ModelReader> reader;
    try {
        reader = openModel(input);
    } catch (const Error& e) {
        throw Error(e.kind(), rankLabel() + " cannot read the model: " + e.what() +
                                  "; every rank reads the model itself, so it must be on a filesystem all nodes "
                                  "share, at the same path");
    }
    std::string fingerprint = std::to_string(reader->tensors().size()) + "/" + std::to_string(reader->tensorBytes());
    for (const TensorInfo& t : reader->tensors())
        fingerprint += "/" + t.name + shapeToString(t.shape);
    std::string atRoot = fingerprint;
    ranks.broadcastString(atRoot, 0, cancel);
    if (atRoot != fingerprint)
        throw Error(ErrorKind::InvalidInput, rankLabel() + " sees a different model at " + input.string() +
                                                 " than rank 0; every node must see the same files (a shared "
                                                 "filesystem)");
    return reader;
}

} // namespace novaq
