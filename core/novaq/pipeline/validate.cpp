#include "novaq/pipeline/validate.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"

#include <cmath>
#include <memory>
#include <sstream>
#include <system_error>
#include <unordered_map>

namespace novaq {

namespace {

void notify(ProgressSink* sink, const ProgressEvent& event)
{
    if (sink)
        sink->onEvent(event);
}

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

} // namespace

ValidateReport validateNovaq(const std::filesystem::path& file, const std::optional<std::filesystem::path>& against,
                             ProgressSink* sink, const CancelToken* cancel)
{
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
        throw Error(ErrorKind::Io, "cannot open '" + file.string() + "': no such file");

    ValidateReport report;
    std::unique_ptr<NovaqFile> novaq;
    std::vector<TensorRecord> records;
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
        return report;
    }
    report.tensorCount = records.size();

    std::unique_ptr<ModelReader> source;
    std::unordered_map<std::string, size_t> sourceIndex;
    if (against) {
        source = openModel(*against);
        const std::vector<TensorInfo>& tensors = source->tensors();
        for (size_t i = 0; i < tensors.size(); ++i)
            sourceIndex.emplace(tensors[i].name, i);
    }

    uint64_t totalParams = 0;
    for (const TensorRecord& r : records) {
        uint64_t n = 1;
        for (int64_t dim : r.shape)
            n *= static_cast<uint64_t>(dim);
        totalParams += n;
    }

    ProgressEvent event;
    event.kind = ProgressEvent::Kind::JobStarted;
    event.tensorCount = records.size();
    event.stage = "validate";
    notify(sink, event);

    std::vector<float> decoded;
    std::vector<float> original;
    uint64_t doneParams = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        checkCancel(cancel);
        const TensorRecord& r = records[i];
        uint64_t numel = 1;
        for (int64_t dim : r.shape)
            numel *= static_cast<uint64_t>(dim);

        event = {};
        event.kind = ProgressEvent::Kind::TensorStarted;
        event.tensorIndex = i;
        event.tensorCount = records.size();
        event.tensorName = r.name;
        event.stage = "validate";
        event.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 0.0;
        notify(sink, event);

        TensorCheck check;
        check.name = r.name;
        check.recordedRelError = r.relError;

        if (!std::isfinite(r.relError) || r.relError < 0)
            addProblem(check, "recorded relative error " + number(r.relError) + " is not a finite value >= 0");
        if (std::isnan(r.sqnrDb))
            addProblem(check, "recorded SQNR is not a number");
        if (!std::isfinite(r.effectiveBits) || r.effectiveBits < 0)
            addProblem(check, "recorded effective bits " + number(r.effectiveBits) + " is not a finite value >= 0");

        bool decodedOk = false;
        try {
            const std::span<const std::byte> bytes = novaq->section(r.data, "tensor '" + r.name + "'");
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
            decodedOk = true;
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Cancelled)
                throw;
            addProblem(check, e.what());
        }
        novaq->release(r.data);

        if (decodedOk) {
            size_t bad = 0;
            size_t first = 0;
            for (size_t k = 0; k < decoded.size(); ++k)
                if (!std::isfinite(decoded[k]) && bad++ == 0)
                    first = k;
            if (bad > 0) {
                addProblem(check, std::to_string(bad) + " decoded values are not finite (first at element " +
                                      std::to_string(first) + ")");
                decodedOk = false;
            }
        }

        if (source && decodedOk) {
            auto it = sourceIndex.find(r.name);
            if (it == sourceIndex.end()) {
                addProblem(check, "tensor is not in the source model '" + against->string() + "'");
            } else {
                const TensorInfo& info = source->tensors()[it->second];
                if (info.shape != r.shape) {
                    addProblem(check, "shape " + shapeToString(r.shape) + " differs from the source's " +
                                          shapeToString(info.shape));
                } else {
                    try {
                        original.resize(static_cast<size_t>(numel));
                        source->readFloat(it->second, original);
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
                    source->release(it->second);
                }
            }
        }

        doneParams += numel;
        if (!check.ok)
            report.ok = false;

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

        report.tensors.push_back(std::move(check));

        event.kind = ProgressEvent::Kind::TensorFinished;
        event.tensorFraction = 1.0;
        event.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 1.0;
        event.result = &result;
        notify(sink, event);
    }

    event = {};
    event.kind = ProgressEvent::Kind::JobFinished;
    event.tensorIndex = records.size();
    event.tensorCount = records.size();
    event.tensorFraction = 1.0;
    event.overallFraction = 1.0;
    event.stage = "validate";
    notify(sink, event);
    return report;
}

} // namespace novaq
