#include "novaq/pipeline/compress_steps.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/encoder.h"
#include "novaq/codec/refine.h"
#include "novaq/container/novaq_file.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/text/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_set>

namespace novaq {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// FNV-1a: each tensor gets its own seed from the run's seed and its name, so a tensor's
// codes do not depend on which tensors came before it.
uint64_t tensorSeed(uint64_t seed, const std::string& name)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (unsigned char c : name) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

bool allFinite(std::span<const float> values) noexcept
{
    return std::all_of(values.begin(), values.end(), [](float x) { return std::isfinite(x); });
}

std::string fileOf(const ModelReader& reader, const TensorInfo& t)
{
    const auto& files = reader.files();
    return t.fileIndex < files.size() ? files[t.fileIndex].string() : files.empty() ? std::string() : files[0].string();
}

// An empty, non-UTF-8 or duplicate tensor name.
void checkTensorNames(const ModelReader& reader)
{
    const std::vector<TensorInfo>& tensors = reader.tensors();
    std::unordered_set<std::string_view> names;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = tensors[i];
        const std::string which = "tensor " + std::to_string(i + 1) + " of " + std::to_string(tensors.size()) +
                                  " (shape " + shapeToString(t.shape) + ")";
        if (t.name.empty())
            throw Error(ErrorKind::InvalidInput, fileOf(reader, t) + ": " + which +
                                                     " has an empty name; a .novaq file names every tensor, so "
                                                     "this model cannot be compressed (name the tensor in the source)");
        try {
            (void)nlohmann::json(t.name).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
        } catch (const nlohmann::json::exception&) {
            throw Error(ErrorKind::InvalidInput,
                        fileOf(reader, t) + ": the name of " + which +
                            " is not valid UTF-8; a .novaq file stores names as JSON text (rename the tensor)");
        }
        if (!names.insert(t.name).second)
            throw Error(ErrorKind::InvalidInput, fileOf(reader, t) + ": tensor '" + t.name +
                                                     "' appears twice; a .novaq file names every tensor once");
    }
}

// NaN or infinite weights (as 32-bit floats) in the float tensors; on a cluster each rank
// reads its share.
void checkFiniteWeights(const ModelReader& reader, std::vector<float>& scratch, const CancelToken* cancel)
{
    const std::vector<TensorInfo>& tensors = reader.tensors();
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = tensors[i];
        if (!isFloatDType(t.dtype)) // integers are kept exactly and are always finite
            continue;
        if (i % static_cast<size_t>(cluster().size()) != static_cast<size_t>(cluster().rank()))
            continue; // on a cluster each rank reads its share
        checkCancel(cancel);
        scratch.resize(static_cast<size_t>(t.numel()));
        reader.readFloat(i, scratch);
        reader.release(i);
        const auto first = std::find_if(scratch.begin(), scratch.end(), [](float x) { return !std::isfinite(x); });
        if (first == scratch.end())
            continue;
        const auto count = std::count_if(first, scratch.end(), [](float x) { return !std::isfinite(x); });
        std::ostringstream value;
        value << *first;
        throw Error(ErrorKind::InvalidInput,
                    fileOf(reader, t) + ": tensor '" + t.name + "' " + shapeToString(t.shape) + " holds " +
                        std::to_string(count) + " NaN or infinite value" + (count == 1 ? "" : "s") +
                        " (the first, element " + std::to_string(first - scratch.begin()) + ", is " + value.str() +
                        (t.dtype == DType::F64 ? " as a 32-bit float" : "") +
                        "); NOVAQ does not compress non-finite weights, which would fail at first use: repair or "
                        "re-export the model");
    }
}

} // namespace

void checkRunOptions(const CompressOptions& options, bool targeted)
{
    if (options.threads < 0)
        throw Error(ErrorKind::InvalidArgument, "--threads must be 0 (all cores) or more");
    if (options.output.empty())
        throw Error(ErrorKind::InvalidArgument, "no output file given");
    const Cluster& ranks = cluster(); // a cluster run: rank 0 writes, every rank compresses a share
    if (ranks.rank() == 0) {
        std::error_code ec;
        const auto parent = std::filesystem::absolute(options.output, ec).parent_path();
        if (!std::filesystem::is_directory(parent, ec))
            throw Error(ErrorKind::Io, "cannot write " + options.output.string() + ": the folder " + parent.string() +
                                           " does not exist; create it or choose another --output");
        if (std::filesystem::exists(options.output, ec) && std::filesystem::exists(options.input, ec) &&
            std::filesystem::equivalent(options.output, options.input, ec))
            throw Error(ErrorKind::InvalidArgument,
                        "--output " + options.output.string() + " is the input model; choose another file name");
        if (!options.overwrite && std::filesystem::exists(options.output, ec))
            throw Error(ErrorKind::Io, options.output.string() + " already exists");
    }
    if (targeted && !ranks.single())
        throw Error(ErrorKind::Unsupported,
                    "--target-size and --target-bits run as one process for now (each tensor's preset "
                    "depends on the bytes of those written before it): run without mpirun, or give --bits");
}

void checkBeforeCompressing(const ModelReader& reader, std::vector<float>& scratch, const CancelToken* cancel)
{
    checkTensorNames(reader);
    checkFiniteWeights(reader, scratch, cancel);
}

uint64_t attachedTokenizerBytes(const CompressOptions& options)
{
    uint64_t attached = 0;
    if (options.attachTokenizer)
        for (const auto& file : tokenizerFilesBeside(options.input)) {
            std::error_code ec;
            attached += (std::filesystem::file_size(file, ec) + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign +
                        file.filename().string().size() + 128;
        }
    return attached;
}

nlohmann::json compressSettings(const CompressOptions& options, const PlanOptions& plan, const TargetFit* fit)
{
    nlohmann::json settings = codecConfigToJson(plan.codec.resolve()); // d, b1, b2, subspaces
    // The bits as CodecSpec gives them: the preset's own, the expert codec's code bits, or with
    // a target the smallest preset's, where the fit starts (resolveCodec, compress.cpp).
    settings["bits"] = plan.codec.bits();
    settings["seed"] = options.seed;
    const CodecParams defaults;
    settings["kmeans_iterations"] = defaults.kmeansIterations;
    settings["train_vectors"] = defaults.trainVectors;
    settings["refit_iterations"] = defaults.refitIterations;
    settings["full_rounds"] = defaults.fullRounds;
    settings["beam"] = defaults.beamWidth;
    settings["outlier_fraction"] = defaults.outlierFraction;
    settings["outlier_threshold"] = defaults.outlierThreshold;
    settings["allocation"] = fit ? "target" : plan.codec.isPreset() ? "balanced" : "uniform";
    if (fit)
        settings["target"] = {{"option", options.targetText},
                              {"bytes", fit->targetBytes},
                              {"bits", options.targetBits},
                              {"estimated_bytes", fit->inspection.estimatedFileBytes()},
                              {"predicted_error", fit->inspection.predictedError}};
    if (fit && fit->inspection.sensitivityTokens > 0) {
        settings["target"]["allocation"] = "sensitivity";
        settings["target"]["sensitivity_tokens"] = fit->inspection.sensitivityTokens;
        settings["target"]["predicted_kl"] = fit->inspection.predictedKl;
    }
    return settings;
}

void setSourceFields(TensorRecord& rec, const TensorInfo& info)
{
    rec.name = info.name;
    rec.shape = info.shape;
    rec.sourceDtype = info.storage.empty() ? std::string(dtypeInfo(info.dtype).name) : info.storage;
    rec.bytesIn = info.nbytes;
}

std::string storedAs(const TensorRecord& r)
{
    if (r.encoding == TensorEncoding::Raw)
        return std::string(dtypeInfo(r.dtype).name);
    if (r.encoding == TensorEncoding::Gguf)
        return std::string(r.ggml->name);
    return codecLabel(r.codec);
}

TensorCompressor::TensorCompressor(const ModelReader& reader, const CompressOptions& options, const CancelToken* cancel)
    : m_reader(reader), m_options(options), m_cancel(cancel)
{}

TensorOutcome TensorCompressor::compress(size_t index, const TensorPlan& plan, Calibrator* calibrator,
                                         const ProgressFn& progress, PhaseSeconds& phases)
{
    const auto t0 = Clock::now();
    const TensorInfo& info = m_reader.tensors()[index];
    TensorRecord rec;
    setSourceFields(rec, info);
    Stored stored;
    if (plan.quantize) {
        quantize(index, plan, calibrator, progress, phases, rec, stored);
    } else if (plan.keepSource) { // GGUF blocks, byte for byte: decode as the source does
        keepBytes(index, rec, stored, TensorEncoding::Gguf);
    } else if (plan.keepAs == info.dtype && info.storage.empty()) {
        keepBytes(index, rec, stored, TensorEncoding::Raw);
    } else {
        m_W.resize(static_cast<size_t>(info.numel()));
        m_reader.readFloat(index, m_W);
        keepFaithfully(plan.keepAs, rec, stored);
    }
    m_reader.release(index);
    checkCancel(m_cancel);
    TensorOutcome out;
    out.rec = std::move(rec);
    out.unrefinedOutputError = stored.unrefinedOutputError;
    out.seconds = secondsSince(t0);
    out.payload = std::move(stored.payload);
    if (calibrator && out.rec.encoding == TensorEncoding::Novaq)
        out.What = m_What;
    return out;
}

CodecParams TensorCompressor::codecParams(const TensorPlan& plan, const std::string& name) const
{
    CodecParams params;
    params.config = plan.config;
    params.seed = tensorSeed(m_options.seed, name);
    if (m_options.quickEncode) {
        params.kmeansIterations = 2;
        params.trainVectors = 8192;
        params.refitIterations = 0;
        params.fullRounds = 1;
    }
    return params;
}

// Calibrated (`calibrator` non-null): the statistics weight the columns (and the embedding's
// rows), the goal is the teacher target W* (Calibrator::targets) and the codes are refitted for
// the layer's output.
void TensorCompressor::quantize(size_t index, const TensorPlan& plan, Calibrator* calibrator,
                                const ProgressFn& progress, PhaseSeconds& phases, TensorRecord& rec, Stored& out)
{
    const TensorInfo& info = m_reader.tensors()[index];
    const auto numel = static_cast<size_t>(info.numel());
    m_W.resize(numel);
    m_reader.readFloat(index, m_W);
    CodecParams params = codecParams(plan, info.name);
    TensorCalibration calibration;
    if (calibrator) {
        reportProgress(progress, 0.0, 1.0, "calibrate");
        calibration = calibrator->statistics(index);
        params.columnImportance = calibration.columnImportance;
        params.rowImportance = calibration.rowImportance;
    }
    auto tp = Clock::now();
    std::vector<float> target;
    if (calibrator) {
        target = calibrator->targets(m_W, info.rows(), info.cols(), calibration);
        if (!target.empty())
            phases.targets += secondsSince(tp);
    }
    const std::span<const float> goal = target.empty() ? std::span<const float>(m_W) : target;
    QuantizedTensor q;
    tp = Clock::now();
    try {
        q = encodeMatrix(goal, info.rows(), info.cols(), params, m_cancel, progress);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::InvalidInput)
            throw;
        throw Error(e.kind(), fileOf(m_reader, info) + ": tensor '" + info.name + "': " + e.what());
    }
    phases.encoding += secondsSince(tp);
    if (calibration.H.size() > 0) {
        reportProgress(progress, 0.97, 1.0, "refit");
        tp = Clock::now();
        const RefineResult refined = refineForOutput(q, goal, calibration.H);
        phases.refit += secondsSince(tp);
        rec.outputError = refined.after;
        out.unrefinedOutputError = refined.before;
    }
    out.payload = serialize(q);
    m_What.resize(numel);
    decode(q, m_What);
    rec.encoding = TensorEncoding::Novaq;
    rec.codec = q.config;
    rec.colScale = q.hasColScale;
    rec.relError = relativeError(m_W, m_What);
    // The codec's float arithmetic can overflow on weights near the float maximum; a
    // tensor it cannot give back finitely is kept instead (validate refuses non-finite).
    if (!allFinite(m_What) || !std::isfinite(rec.relError)) {
        rec.codec = {};
        rec.colScale = false;
        rec.outputError = -1;
        out.unrefinedOutputError = -1;
        keepFaithfully(plan.keepAs, rec, out);
    }
}

// The source's bytes as they are: GGUF blocks (decoded as the source does) or raw elements.
void TensorCompressor::keepBytes(size_t index, TensorRecord& rec, Stored& out, TensorEncoding encoding) const
{
    const TensorInfo& info = m_reader.tensors()[index];
    const auto raw = m_reader.rawBytes(index);
    out.payload.assign(raw.begin(), raw.end());
    rec.encoding = encoding;
    if (encoding == TensorEncoding::Gguf)
        rec.ggml = ggmlTypeByName(info.storage);
    else
        rec.dtype = info.dtype;
    rec.relError = 0.0;
}

// F16 holds magnitudes up to 65504: larger values keep their range in BF16, and values
// that BF16 would round to infinity (near the float maximum) stay F32, exactly.
void TensorCompressor::keepFaithfully(DType preferred, TensorRecord& rec, Stored& out)
{
    DType target = preferred;
    if (target == DType::F16 && !std::all_of(m_W.begin(), m_W.end(), [](float x) { return std::abs(x) <= 65504.0f; }))
        target = DType::BF16;
    keepAs(target, rec, out);
    if (target != DType::F32 && !allFinite(m_What))
        keepAs(DType::F32, rec, out);
}

// Keeps the weights (read already) as `target`; What gets the values the file will give back.
void TensorCompressor::keepAs(DType target, TensorRecord& rec, Stored& out)
{
    const size_t numel = m_W.size();
    out.payload.resize(numel * dtypeInfo(target).bytes);
    convertFromFloat(target, m_W.data(), numel, out.payload.data());
    m_What.resize(numel);
    convertToFloat(target, out.payload.data(), numel, m_What.data());
    rec.encoding = TensorEncoding::Raw;
    rec.dtype = target;
    rec.relError = relativeError(m_W, m_What);
}

TensorResult tensorResult(const TensorRecord& rec, uint64_t numel, const TensorOutcome& out)
{
    TensorResult result;
    result.name = rec.name;
    result.shape = rec.shape;
    result.sourceDtype = rec.sourceDtype;
    result.quantized = rec.encoding == TensorEncoding::Novaq;
    result.storedAs = storedAs(rec);
    result.relError = rec.relError;
    result.sqnrDb = rec.sqnrDb;
    result.effectiveBits = rec.effectiveBits;
    result.params = numel;
    result.bytesIn = rec.bytesIn;
    result.bytesOut = rec.bytesOut;
    result.seconds = out.seconds;
    result.outputError = rec.outputError;
    result.outputErrorUnrefined = out.unrefinedOutputError;
    return result;
}

nlohmann::json manifestJson(const CompressOptions& options, const ModelReader& reader, const ModelReport& report,
                            uint16_t minor, nlohmann::json records, const nlohmann::json& attachments)
{
    nlohmann::json manifest;
    manifest["format"] = "novaq";
    manifest["version"] = {kNovaqMajor, minor};
    manifest["writer"] = std::string("novaq-studio ") + NOVAQ_VERSION;
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : reader.files())
        files.push_back(f.filename().string());
    manifest["source"] = {{"label", report.source},
                          {"format", report.sourceFormat},
                          {"files", files},
                          {"tensor_bytes", report.sourceBytes}};
    {
        std::error_code ec;
        const std::filesystem::path where = std::filesystem::absolute(options.input, ec);
        manifest["source"]["path"] = (ec ? options.input : where).string(); // where eval finds the tokenizer
    }
    manifest["architecture"] = report.architecture;
    const nlohmann::json& meta = reader.metadata();
    manifest["config"] = meta.contains("config") ? meta["config"] : nlohmann::json();
    manifest["format_metadata"] = meta.contains("format_metadata") ? meta["format_metadata"] : nlohmann::json();
    manifest["settings"] = report.settings;
    manifest["tensors"] = std::move(records);
    if (!attachments.empty())
        manifest["attachments"] = attachments;
    return manifest;
}

} // namespace novaq
