#include "novaq/pipeline/export.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/safetensors_writer.h"
#include "novaq/io/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

namespace novaq {

namespace {

bool isFloatType(DType type) noexcept
{
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || type == DType::F64;
}

bool samePath(const std::filesystem::path& a, const std::filesystem::path& b)
{
    std::error_code ec;
    if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec))
        return std::filesystem::equivalent(a, b, ec);
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

void notify(ProgressSink* sink, const ProgressEvent& event)
{
    if (sink)
        sink->onEvent(event);
}

} // namespace

void exportSafetensors(const std::filesystem::path& model, const std::filesystem::path& output, DType dtype,
                       ProgressSink* sink, const CancelToken* cancel)
{
    if (dtype != DType::F32 && dtype != DType::F16)
        throw Error(ErrorKind::InvalidArgument, "export: element type " + std::string(dtypeInfo(dtype).name) +
                                                    " is not supported; choose F32 or F16");
    if (samePath(model, output))
        throw Error(ErrorKind::InvalidArgument,
                    "export: the output '" + output.string() + "' is the input model; choose another output file");
    checkCancel(cancel);

    std::unique_ptr<ModelReader> reader = openModel(model);
    for (const std::filesystem::path& file : reader->files())
        if (samePath(file, output))
            throw Error(ErrorKind::InvalidArgument, "export: the output '" + output.string() +
                                                        "' is a file of the input model; choose another output file");

    const std::vector<TensorInfo>& tensors = reader->tensors();
    // Names safetensors cannot hold are a fault of the input model, not of the command line.
    std::set<std::string_view> names;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = tensors[i];
        const std::string file =
            t.fileIndex < reader->files().size() ? reader->files()[t.fileIndex].string() : model.string();
        if (t.name.empty() || t.name == "__metadata__")
            throw Error(ErrorKind::InvalidInput,
                        file + ": tensor " + std::to_string(i + 1) + " of " + std::to_string(tensors.size()) +
                            " (shape " + shapeToString(t.shape) + ") is named '" + t.name +
                            "', which a safetensors file cannot hold; rename it in the source");
        if (!names.insert(t.name).second)
            throw Error(ErrorKind::InvalidInput,
                        file + ": tensor '" + t.name + "' appears twice; a safetensors file names every tensor once");
    }
    std::vector<SafetensorsWriter::Entry> entries;
    entries.reserve(tensors.size());
    size_t largest = 0;
    uint64_t totalParams = 0;
    for (const TensorInfo& t : tensors) {
        entries.push_back({t.name, t.shape, isFloatType(t.dtype) ? dtype : DType::F32});
        largest = std::max(largest, static_cast<size_t>(t.numel()));
        totalParams += static_cast<uint64_t>(t.numel());
    }

    SafetensorsWriter writer(output, entries, {{"format", "pt"}, {"exported_by", "novaq-studio"}});

    ProgressEvent event;
    event.kind = ProgressEvent::Kind::JobStarted;
    event.tensorCount = tensors.size();
    event.stage = "write";
    notify(sink, event);

    std::vector<float> buffer;
    buffer.reserve(largest);
    uint64_t doneParams = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        checkCancel(cancel);
        const TensorInfo& t = tensors[i];
        const auto start = std::chrono::steady_clock::now();
        const auto numel = static_cast<size_t>(t.numel());

        event = {};
        event.kind = ProgressEvent::Kind::TensorStarted;
        event.tensorIndex = i;
        event.tensorCount = tensors.size();
        event.tensorName = t.name;
        event.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 0.0;
        event.stage = "write";
        notify(sink, event);

        buffer.resize(numel);
        reader->readFloat(i, buffer);
        // F16 holds magnitudes up to 65504; beyond, it would write infinities that no reader
        // (novaq local included) takes back. Nothing is left behind: the writer is not committed.
        if (entries[i].dtype == DType::F16)
            if (const auto big =
                    std::find_if(buffer.begin(), buffer.end(), [](float x) { return !(std::abs(x) <= 65504.0f); });
                big != buffer.end()) {
                std::ostringstream value;
                value << *big;
                throw Error(ErrorKind::Unsupported, model.string() + ": tensor '" + t.name + "' holds " + value.str() +
                                                        " (element " + std::to_string(big - buffer.begin()) +
                                                        "), beyond the F16 range of +-65504; export with --dtype f32");
            }
        writer.writeTensor(i, buffer);
        reader->release(i);
        doneParams += numel;

        TensorResult result;
        result.name = t.name;
        result.shape = t.shape;
        result.sourceDtype = std::string(dtypeInfo(t.dtype).name);
        result.quantized = false;
        result.storedAs = std::string(dtypeInfo(entries[i].dtype).name);
        result.params = numel;
        result.bytesIn = t.nbytes;
        result.bytesOut = numel * dtypeInfo(entries[i].dtype).bytes;
        result.effectiveBits = 8.0 * dtypeInfo(entries[i].dtype).bytes;
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        event.kind = ProgressEvent::Kind::TensorFinished;
        event.tensorFraction = 1.0;
        event.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 1.0;
        event.result = &result;
        notify(sink, event);
    }
    checkCancel(cancel);
    writer.commit();

    event = {};
    event.kind = ProgressEvent::Kind::JobFinished;
    event.tensorCount = tensors.size();
    event.tensorIndex = tensors.size();
    event.tensorFraction = 1.0;
    event.overallFraction = 1.0;
    event.stage = "write";
    notify(sink, event);
}

} // namespace novaq
