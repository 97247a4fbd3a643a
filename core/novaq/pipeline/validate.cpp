#include "novaq/pipeline/validate.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/job_progress.h"

#include <cmath>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace novaq {

namespace {

std::string number(double v)
{
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
}

void addProblem(TensorCheck& check, const std::string& problem)
{
    check.ok = false;
    check.problem += check.problem.empty() ? problem : "; " + problem;
}

uint64_t numelOf(const TensorRecord& r)
{
    uint64_t n = 1;
    for (int64_t dim : r.shape)
        n *= static_cast<uint64_t>(dim);
    return n;
}

// The file and its tensor records; null when the file is malformed (the problem in `report`).
std::unique_ptr<NovaqFile> openRecords(const std::filesystem::path& file, ValidateReport& report,
                                       std::vector<TensorRecord>& records)
{
    std::unique_ptr<NovaqFile> novaq;
    try {
        novaq = std::make_unique<NovaqFile>(file);
        report.major = novaq->major();
        report.minor = novaq->minor();
        try {
            records = tensorRecords(novaq->manifest(), novaq->fileSize());
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Corrupt)
                throw;
            throw Error(ErrorKind::Corrupt, file.string() + ": " + e.what());
        }
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Corrupt)
            throw;
        report.ok = false;
        report.problems.push_back(e.what());
        return nullptr;
    }
    return novaq;
}

// The source model of --against, its tensors by name.
struct SourceModel {
    std::filesystem::path path;
    std::unique_ptr<ModelReader> reader;
    std::unordered_map<std::string, size_t> index;
};

SourceModel openSource(const std::filesystem::path& against)
{
    SourceModel source{against, openModel(against), {}};
    const std::vector<TensorInfo>& tensors = source.reader->tensors();
    for (size_t i = 0; i < tensors.size(); ++i)
        source.index.emplace(tensors[i].name, i);
    return source;
}

void checkRecordedFigures(const TensorRecord& r, TensorCheck& check)
{
    if (!std::isfinite(r.relError) || r.relError < 0)
        addProblem(check, "recorded relative error " + number(r.relError) + " is not a finite value >= 0");
    if (std::isnan(r.sqnrDb))
        addProblem(check, "recorded SQNR is not a number");
    if (!std::isfinite(r.effectiveBits) || r.effectiveBits < 0)
        addProblem(check, "recorded effective bits " + number(r.effectiveBits) + " is not a finite value >= 0");
}

void decodeInto(NovaqFile& novaq, const TensorRecord& r, uint64_t numel, std::vector<float>& decoded)
{
    const std::span<const std::byte> bytes = novaq.section(r.data, "tensor '" + r.name + "'");
    decoded.resize(static_cast<size_t>(numel));
    if (r.encoding == TensorEncoding::Raw) {
        convertToFloat(r.dtype, bytes.data(), decoded.size(), decoded.data());
    } else if (r.encoding == TensorEncoding::Gguf) {
        dequantizeGgml(*r.ggml, bytes.data(), decoded.size(), decoded.data());
    } else {
        const int64_t rows = r.shape[0];
        const auto cols = static_cast<int64_t>(numel / static_cast<uint64_t>(rows));
        const QuantizedTensor q = deserialize(bytes, rows, cols, r.codec, r.colScale);
        decode(q, decoded);
    }
}

// Decodes the tensor into `decoded`; false (the problem in `check`) when it does not decode
// or gives non-finite values.
bool decodeAndCheck(NovaqFile& novaq, const TensorRecord& r, uint64_t numel, std::vector<float>& decoded,
                    TensorCheck& check)
{
    bool decodedOk = false;
    try {
        decodeInto(novaq, r, numel, decoded);
        decodedOk = true;
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Cancelled)
            throw;
        addProblem(check, e.what());
    }
    novaq.release(r.data);
    if (!decodedOk)
        return false;
    size_t bad = 0;
    size_t first = 0;
    for (size_t k = 0; k < decoded.size(); ++k)
        if (!std::isfinite(decoded[k]) && bad++ == 0)
            first = k;
    if (bad == 0)
        return true;
    addProblem(check,
               std::to_string(bad) + " decoded values are not finite (first at element " + std::to_string(first) + ")");
    return false;
}

// Recomputes the tensor's relative error against the source and compares it with the record.
void compareWithSource(SourceModel& source, const TensorRecord& r, uint64_t numel, const std::vector<float>& decoded,
                       std::vector<float>& original, TensorCheck& check)
{
    auto it = source.index.find(r.name);
    if (it == source.index.end()) {
        addProblem(check, "tensor is not in the source model '" + source.path.string() + "'");
        return;
    }
    const TensorInfo& info = source.reader->tensors()[it->second];
    if (info.shape != r.shape) {
        addProblem(check,
                   "shape " + shapeToString(r.shape) + " differs from the source's " + shapeToString(info.shape));
        return;
    }
    try {
        original.resize(static_cast<size_t>(numel));
        source.reader->readFloat(it->second, original);
        const double recomputed = relativeError(original, decoded);
        check.recomputedRelError = recomputed;
        if (!(std::abs(recomputed - r.relError) <= 1e-6 + 1e-4 * r.relError))
            addProblem(check, "recorded relative error " + number(r.relError) + " but recomputed " +
                                  number(recomputed) + " against the source");
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Cancelled)
            throw;
        addProblem(check, e.what());
    }
    source.reader->release(it->second);
}

TensorResult resultOf(const TensorRecord& r, const TensorCheck& check, uint64_t numel)
{
    TensorResult result;
    result.name = r.name;
    result.shape = r.shape;
    result.sourceDtype = r.sourceDtype;
    result.quantized = r.encoding == TensorEncoding::Novaq;
    result.relError = check.recomputedRelError.value_or(r.relError);
    result.sqnrDb = r.sqnrDb;
    result.effectiveBits = r.effectiveBits;
    result.params = numel;
    result.bytesIn = r.bytesIn;
    result.bytesOut = r.bytesOut;
    return result;
}

} // namespace

ValidateReport validateNovaq(const std::filesystem::path& file, const std::optional<std::filesystem::path>& against,
                             ProgressSink* sink, const CancelToken* cancel)
{
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
        throw Error(ErrorKind::Io, "cannot open '" + file.string() + "': no such file");

    ValidateReport report;
    std::vector<TensorRecord> records;
    const std::unique_ptr<NovaqFile> novaq = openRecords(file, report, records);
    if (!novaq)
        return report;
    report.tensorCount = records.size();

    std::optional<SourceModel> source;
    if (against)
        source = openSource(*against);

    uint64_t totalParams = 0;
    for (const TensorRecord& r : records)
        totalParams += numelOf(r);
    JobProgress progress(sink, records.size(), totalParams, "validate");
    progress.jobStarted();

    std::vector<float> decoded;
    std::vector<float> original;
    for (size_t i = 0; i < records.size(); ++i) {
        checkCancel(cancel);
        const TensorRecord& r = records[i];
        const uint64_t numel = numelOf(r);
        progress.tensorStarted(i, r.name);

        TensorCheck check;
        check.name = r.name;
        check.recordedRelError = r.relError;
        checkRecordedFigures(r, check);
        if (decodeAndCheck(*novaq, r, numel, decoded, check) && source)
            compareWithSource(*source, r, numel, decoded, original, check);
        if (!check.ok)
            report.ok = false;

        const TensorResult result = resultOf(r, check, numel);
        report.tensors.push_back(std::move(check));
        progress.tensorFinished(i, r.name, numel, &result);
    }
    progress.jobFinished();
    return report;
}

} // namespace novaq
