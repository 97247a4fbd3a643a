#include "novaq/pipeline/export.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/safetensors_writer.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/job_progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace novaq {

namespace {

bool samePath(const std::filesystem::path& a, const std::filesystem::path& b)
{
    std::error_code ec;
    if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec))
        return std::filesystem::equivalent(a, b, ec);
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

void checkExportOptions(const std::filesystem::path& model, const std::filesystem::path& output, DType dtype)
{
    if (dtype != DType::F32 && dtype != DType::F16)
        throw Error(ErrorKind::InvalidArgument, "export: element type " + std::string(dtypeInfo(dtype).name) +
                                                    " is not supported; choose F32 or F16");
    if (samePath(model, output))
        throw Error(ErrorKind::InvalidArgument,
                    "export: the output '" + output.string() + "' is the input model; choose another output file");
}

// Names safetensors cannot hold are a fault of the input model, not of the command line; so is
// an output that is one of the model's files.
void checkExportable(const ModelReader& reader, const std::filesystem::path& model, const std::filesystem::path& output)
{
    for (const std::filesystem::path& file : reader.files())
        if (samePath(file, output))
            throw Error(ErrorKind::InvalidArgument, "export: the output '" + output.string() +
                                                        "' is a file of the input model; choose another output file");
    const std::vector<TensorInfo>& tensors = reader.tensors();
    std::set<std::string_view> names;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = tensors[i];
        const std::string file =
            t.fileIndex < reader.files().size() ? reader.files()[t.fileIndex].string() : model.string();
        if (t.name.empty() || t.name == "__metadata__")
            throw Error(ErrorKind::InvalidInput,
                        file + ": tensor " + std::to_string(i + 1) + " of " + std::to_string(tensors.size()) +
                            " (shape " + shapeToString(t.shape) + ") is named '" + t.name +
                            "', which a safetensors file cannot hold; rename it in the source");
        if (!names.insert(t.name).second)
            throw Error(ErrorKind::InvalidInput,
                        file + ": tensor '" + t.name + "' appears twice; a safetensors file names every tensor once");
    }
}

// F16 holds magnitudes up to 65504; beyond, it would write infinities that no reader (novaq
// local included) takes back. Nothing is left behind: the writer is not committed.
void checkF16Range(std::span<const float> values, const std::filesystem::path& model, const TensorInfo& t)
{
    const auto big = std::find_if(values.begin(), values.end(), [](float x) { return !(std::abs(x) <= 65504.0f); });
    if (big == values.end())
        return;
    std::ostringstream value;
    value << *big;
    throw Error(ErrorKind::Unsupported, model.string() + ": tensor '" + t.name + "' holds " + value.str() +
                                            " (element " + std::to_string(big - values.begin()) +
                                            "), beyond the F16 range of +-65504; export with --dtype f32");
}

TensorResult resultOf(const TensorInfo& t, DType stored, double seconds)
{
    const auto numel = static_cast<size_t>(t.numel());
    TensorResult result;
    result.name = t.name;
    result.shape = t.shape;
    result.sourceDtype = std::string(dtypeInfo(t.dtype).name);
    result.quantized = false;
    result.storedAs = std::string(dtypeInfo(stored).name);
    result.params = numel;
    result.bytesIn = t.nbytes;
    result.bytesOut = numel * dtypeInfo(stored).bytes;
    result.effectiveBits = 8.0 * dtypeInfo(stored).bytes;
    result.seconds = seconds;
    return result;
}

} // namespace

void exportSafetensors(const std::filesystem::path& model, const std::filesystem::path& output, DType dtype,
                       ProgressSink* sink, const CancelToken* cancel)
{
    checkExportOptions(model, output, dtype);
    checkCancel(cancel);

    std::unique_ptr<ModelReader> reader = openModel(model);
    checkExportable(*reader, model, output);
    const std::vector<TensorInfo>& tensors = reader->tensors();
    std::vector<SafetensorsWriter::Entry> entries;
    entries.reserve(tensors.size());
    size_t largest = 0;
    uint64_t totalParams = 0;
    for (const TensorInfo& t : tensors) {
        entries.push_back({t.name, t.shape, isFloatDType(t.dtype) ? dtype : DType::F32});
        largest = std::max(largest, static_cast<size_t>(t.numel()));
        totalParams += static_cast<uint64_t>(t.numel());
    }

    SafetensorsWriter writer(output, entries, {{"format", "pt"}, {"exported_by", "novaq-studio"}});
    JobProgress progress(sink, tensors.size(), totalParams, "write");
    progress.jobStarted();

    std::vector<float> buffer;
    buffer.reserve(largest);
    for (size_t i = 0; i < tensors.size(); ++i) {
        checkCancel(cancel);
        const TensorInfo& t = tensors[i];
        const auto start = std::chrono::steady_clock::now();
        const auto numel = static_cast<size_t>(t.numel());
        progress.tensorStarted(i, t.name);

        buffer.resize(numel);
        reader->readFloat(i, buffer);
        if (entries[i].dtype == DType::F16)
            checkF16Range(buffer, model, t);
        writer.writeTensor(i, buffer);
        reader->release(i);

        const TensorResult result = resultOf(
            t, entries[i].dtype, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        progress.tensorFinished(i, t.name, numel, &result);
    }
    checkCancel(cancel);
    writer.commit();
    progress.jobFinished();
}

} // namespace novaq
