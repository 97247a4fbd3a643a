#include "novaq/pipeline/compress.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/refine.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/formats/model_files.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/planner.h"
#include "novaq/text/tokenizer.h"

#include <Eigen/Cholesky>
#include <tbb/global_control.h>
#include <tbb/info.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
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

std::string storedAs(const TensorRecord& r)
{
    if (r.encoding == TensorEncoding::Raw)
        return std::string(dtypeInfo(r.dtype).name);
    return "novaq d=" + std::to_string(r.codec.d) + " " + std::to_string(r.codec.b1) + "+" +
           std::to_string(r.codec.b2) + " K=" + std::to_string(r.codec.subspaces);
}

void notify(ProgressSink* sink, const ProgressEvent& e)
{
    if (sink)
        sink->onEvent(e);
}

bool isFloatType(DType type) noexcept
{
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || type == DType::F64;
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

// What `validate` refuses in a .novaq file is refused here, before any work, as malformed input
// naming the file and the tensor: an empty, duplicate or non-UTF-8 tensor name (a .novaq
// manifest names every tensor once, in JSON), NaN or infinite weights (as 32-bit floats).
void checkBeforeCompressing(const ModelReader& reader, std::vector<float>& scratch, const CancelToken* cancel)
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
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = tensors[i];
        if (!isFloatType(t.dtype)) // integers are kept exactly and are always finite
            continue;
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

std::filesystem::path demoModelPath(const std::filesystem::path& executable)
{
    std::vector<std::filesystem::path> candidates;
    if (const char* env = std::getenv("NOVAQ_DEMO_MODEL"); env && *env)
        candidates.emplace_back(env);
    if (!executable.empty())
        candidates.push_back(executable.parent_path() / ".." / "share" / "novaq-studio" / "models" / "kjv-llama-7m");
    candidates.emplace_back(NOVAQ_SOURCE_DEMO_MODEL);
    std::string looked;
    for (const auto& c : candidates) {
        std::error_code ec;
        if (std::filesystem::is_directory(c, ec))
            return std::filesystem::weakly_canonical(c, ec);
        looked += (looked.empty() ? "" : ", ") + c.string();
    }
    throw Error(ErrorKind::Io, "the embedded demo model was not found (looked in " + looked +
                                   "); name a model instead: novaq local PATH");
}

ModelReport compressModel(const CompressOptions& options, ProgressSink* sink, const CancelToken* cancel)
{
    const auto t0 = Clock::now();
    CodecConfig config;
    if (options.expert) {
        config = *options.expert;
    } else {
        const auto preset = presetForBits(options.bits);
        if (!preset) {
            std::string list;
            for (const BitsPreset& p : bitsPresets())
                list += (list.empty() ? "" : ", ") + std::to_string(p.bits).substr(0, 3);
            throw Error(ErrorKind::InvalidArgument,
                        "--bits " + std::to_string(options.bits) + " is not a preset; choose one of " + list);
        }
        config = {preset->d, preset->b1, preset->b2, options.subspaces};
    }
    config.subspaces = options.subspaces;
    if (std::string problem = validateConfig(config); !problem.empty())
        throw Error(ErrorKind::InvalidArgument, problem);
    if (options.threads < 0)
        throw Error(ErrorKind::InvalidArgument, "--threads must be 0 (all cores) or more");
    if (options.output.empty())
        throw Error(ErrorKind::InvalidArgument, "no output file given");
    {
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

    std::unique_ptr<ModelReader> reader = openModel(options.input);
    std::vector<float> W, What;
    checkBeforeCompressing(*reader, W, cancel);
    PlanOptions planOptions;
    planOptions.config = config;
    planOptions.bits = options.expert ? 0.0 : options.bits;
    const std::vector<TensorPlan> plans = planModel(*reader, planOptions);

    std::optional<tbb::global_control> threadLimit;
    if (options.threads > 0)
        threadLimit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(options.threads));

    const auto& tensors = reader->tensors();
    uint64_t totalParams = 0, doneParams = 0;
    size_t maxNumel = 0;
    for (const TensorInfo& t : tensors) {
        totalParams += static_cast<uint64_t>(t.numel());
        maxNumel = std::max(maxNumel, static_cast<size_t>(t.numel()));
    }

    ModelReport report;
    report.output = options.output;
    report.source = options.sourceLabel.empty() ? options.input.string() : options.sourceLabel;
    report.sourceFormat = std::string(formatName(reader->format()));
    report.architecture = reader->architecture();
    report.sourceBytes = reader->tensorBytes();
    report.settings = {{"bits", options.expert ? config.codeBitsPerWeight() : options.bits},
                       {"d", config.d},
                       {"b1", config.b1},
                       {"b2", config.b2},
                       {"subspaces", config.subspaces},
                       {"seed", options.seed}};
    const CodecParams defaults;
    report.settings["kmeans_iterations"] = defaults.kmeansIterations;
    report.settings["train_vectors"] = defaults.trainVectors;
    report.settings["refit_iterations"] = defaults.refitIterations;
    report.settings["full_rounds"] = defaults.fullRounds;
    report.settings["beam"] = defaults.beamWidth;
    report.settings["outlier_fraction"] = defaults.outlierFraction;
    report.settings["outlier_threshold"] = defaults.outlierThreshold;
    report.settings["allocation"] = planOptions.bits > 0 ? "balanced" : "uniform";

    // With calibration text, the model's matrices go first, in model order (each fitted to
    // what the compressed layers before it produce), then everything else in file order.
    std::unique_ptr<Calibrator> calibrator;
    std::vector<size_t> order;
    if (!options.calibration.empty()) {
        (void)llamaConfig(*reader); // an architecture we cannot run is the first thing to say
        const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(*reader, options.input);
        CalibrationOptions calibrationOptions;
        calibrationOptions.text = options.calibration;
        calibrationOptions.maxTokens = options.calibrationTokens;
        calibrator = std::make_unique<Calibrator>(*reader, *tokenizer, calibrationOptions, cancel);
        order = calibrator->order();
        report.settings["calibration"] = {{"text", options.calibration.filename().string()},
                                          {"tokens", calibrator->tokens()},
                                          {"damping", calibrationOptions.damping}};
    }
    for (size_t i = 0; i < tensors.size(); ++i)
        if (!calibrator || !calibrator->covers(i))
            order.push_back(i);

    ProgressEvent ev;
    ev.tensorCount = tensors.size();
    ev.kind = ProgressEvent::Kind::JobStarted;
    notify(sink, ev);

    NovaqWriter writer(options.output);
    nlohmann::json records = nlohmann::json::array();
    W.reserve(maxNumel);

    for (const size_t i : order) {
        checkCancel(cancel);
        const bool calibrated = calibrator && calibrator->covers(i);
        const TensorInfo& info = tensors[i];
        const TensorPlan& plan = plans[i];
        const auto tt = Clock::now();
        ev = {};
        ev.kind = ProgressEvent::Kind::TensorStarted;
        ev.tensorIndex = i;
        ev.tensorCount = tensors.size();
        ev.tensorName = info.name;
        ev.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 0.0;
        notify(sink, ev);

        TensorRecord rec;
        rec.name = info.name;
        rec.shape = info.shape;
        rec.sourceDtype = std::string(dtypeInfo(info.dtype).name);
        rec.bytesIn = info.nbytes;
        const auto numel = static_cast<size_t>(info.numel());
        std::vector<std::byte> payload;
        double unrefinedOutputError = -1;
        // Keeps W (read already) as `target`; What gets the values the file will give back.
        auto keepAs = [&](DType target) {
            payload.resize(numel * dtypeInfo(target).bytes);
            convertFromFloat(target, W.data(), numel, payload.data());
            What.resize(numel);
            convertToFloat(target, payload.data(), numel, What.data());
            rec.encoding = TensorEncoding::Raw;
            rec.dtype = target;
            rec.relError = relativeError(W, What);
        };
        // F16 holds magnitudes up to 65504: larger values keep their range in BF16, and values
        // that BF16 would round to infinity (near the float maximum) stay F32, exactly.
        auto keepFaithfully = [&](DType preferred) {
            DType target = preferred;
            if (target == DType::F16 &&
                !std::all_of(W.begin(), W.end(), [](float x) { return std::abs(x) <= 65504.0f; }))
                target = DType::BF16;
            keepAs(target);
            if (target != DType::F32 && !allFinite(What))
                keepAs(DType::F32);
        };

        if (plan.quantize) {
            W.resize(numel);
            reader->readFloat(i, W);
            CodecParams params;
            params.config = plan.config;
            params.seed = tensorSeed(options.seed, info.name);
            if (options.quickEncode) {
                params.kmeansIterations = 2;
                params.trainVectors = 8192;
                params.refitIterations = 0;
                params.fullRounds = 1;
            }
            auto onProgress = [&](double f, const char* stage) {
                ProgressEvent pe;
                pe.kind = ProgressEvent::Kind::TensorProgress;
                pe.tensorIndex = i;
                pe.tensorCount = tensors.size();
                pe.tensorName = info.name;
                pe.tensorFraction = f;
                pe.stage = stage;
                pe.overallFraction = totalParams ? (double(doneParams) + f * double(numel)) / double(totalParams) : 0.0;
                notify(sink, pe);
            };
            TensorCalibration calibration;
            if (calibrated) {
                onProgress(0.0, "calibrate");
                calibration = calibrator->statistics(i);
                params.columnImportance = calibration.columnImportance;
                params.rowImportance = calibration.rowImportance;
            }
            // Teacher targets: the weights that best map the compressed model's inputs to the
            // original's outputs, W* = W C H^-1 (calibrate.h); quantizing towards W* instead of
            // W minimizes ||X_t W^T - X_s What^T||.
            std::vector<float> target;
            if (calibration.C.size() > 0) {
                const Eigen::Map<const HessianMatrix> Wm(W.data(), info.rows(), info.cols());
                const Eigen::LLT<Eigen::MatrixXd> llt(calibration.H.cast<double>());
                const Eigen::MatrixXd WstarT =
                    llt.solve(calibration.C.cast<double>().transpose() * Wm.cast<double>().transpose());
                target.resize(numel);
                Eigen::Map<HessianMatrix>(target.data(), info.rows(), info.cols()) = WstarT.transpose().cast<float>();
            }
            const std::span<const float> goal = target.empty() ? std::span<const float>(W) : target;
            QuantizedTensor q;
            try {
                q = encodeMatrix(goal, info.rows(), info.cols(), params, cancel, onProgress);
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::InvalidInput)
                    throw;
                throw Error(e.kind(), fileOf(*reader, info) + ": tensor '" + info.name + "': " + e.what());
            }
            if (calibration.H.size() > 0) {
                onProgress(0.97, "refit");
                const RefineResult refined = refineForOutput(q, goal, calibration.H);
                rec.outputError = refined.after;
                unrefinedOutputError = refined.before;
            }
            payload = serialize(q);
            What.resize(numel);
            decode(q, What);
            rec.encoding = TensorEncoding::Novaq;
            rec.codec = q.config;
            rec.colScale = q.hasColScale;
            rec.relError = relativeError(W, What);
            // The codec's float arithmetic can overflow on weights near the float maximum; a
            // tensor it cannot give back finitely is kept instead (validate refuses non-finite).
            if (!allFinite(What) || !std::isfinite(rec.relError)) {
                rec.codec = {};
                rec.colScale = false;
                rec.outputError = -1;
                unrefinedOutputError = -1;
                keepFaithfully(plan.keepAs);
            }
        } else if (plan.keepAs == info.dtype && info.storage.empty()) {
            const auto raw = reader->rawBytes(i);
            payload.assign(raw.begin(), raw.end());
            rec.encoding = TensorEncoding::Raw;
            rec.dtype = info.dtype;
            rec.relError = 0.0;
        } else {
            W.resize(numel);
            reader->readFloat(i, W);
            keepFaithfully(plan.keepAs);
        }
        const bool quantized = rec.encoding == TensorEncoding::Novaq;
        if (calibrated) {
            if (quantized) {
                calibrator->done(i, What);
            } else { // kept (at 16 bits or more): later layers see its values
                W.resize(numel);
                reader->readFloat(i, W);
                calibrator->done(i, W);
            }
        }
        reader->release(i);
        checkCancel(cancel);
        rec.data = writer.writeSection(payload);
        rec.bytesOut = payload.size();
        rec.sqnrDb = sqnrDb(rec.relError);
        rec.effectiveBits = numel ? 8.0 * double(payload.size()) / double(numel) : 0.0;
        records.push_back(rec.toJson());

        TensorResult result;
        result.name = rec.name;
        result.shape = rec.shape;
        result.sourceDtype = rec.sourceDtype;
        result.quantized = quantized;
        result.storedAs = storedAs(rec);
        result.relError = rec.relError;
        result.sqnrDb = rec.sqnrDb;
        result.effectiveBits = rec.effectiveBits;
        result.params = numel;
        result.bytesIn = rec.bytesIn;
        result.bytesOut = rec.bytesOut;
        result.seconds = secondsSince(tt);
        result.outputError = rec.outputError;
        result.outputErrorUnrefined = unrefinedOutputError;
        report.tensors.push_back(result);
        doneParams += numel;

        ev = {};
        ev.kind = ProgressEvent::Kind::TensorFinished;
        ev.tensorIndex = i;
        ev.tensorCount = tensors.size();
        ev.tensorName = info.name;
        ev.tensorFraction = 1.0;
        ev.overallFraction = totalParams ? double(doneParams) / double(totalParams) : 1.0;
        ev.result = &report.tensors.back();
        notify(sink, ev);
    }

    nlohmann::json manifest;
    manifest["format"] = "novaq";
    manifest["version"] = {kNovaqMajor, kNovaqMinor};
    manifest["writer"] = std::string("novaq-studio ") + NOVAQ_VERSION;
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : reader->files())
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
    const nlohmann::json& meta = reader->metadata();
    manifest["config"] = meta.contains("config") ? meta["config"] : nlohmann::json();
    manifest["format_metadata"] = meta.contains("format_metadata") ? meta["format_metadata"] : nlohmann::json();
    manifest["settings"] = report.settings;
    manifest["tensors"] = records;
    // On request the tokenizer goes along, so the .novaq file runs (eval / generate) on its own.
    nlohmann::json attachments = nlohmann::json::array();
    for (const std::filesystem::path& file :
         options.attachTokenizer ? tokenizerFilesBeside(options.input) : std::vector<std::filesystem::path>{}) {
        const std::string text = readTextFile(file);
        const auto* data = reinterpret_cast<const std::byte*>(text.data());
        attachments.push_back(
            {{"name", file.filename().string()}, {"data", writer.writeSection({data, text.size()}).toJson()}});
    }
    if (!attachments.empty())
        manifest["attachments"] = attachments;
    checkCancel(cancel);
    writer.commit(manifest);

    std::error_code ec;
    report.fileBytes = std::filesystem::file_size(options.output, ec);
    report.seconds = secondsSince(t0);
    ev = {};
    ev.kind = ProgressEvent::Kind::JobFinished;
    ev.tensorCount = tensors.size();
    ev.tensorIndex = tensors.size();
    ev.overallFraction = 1.0;
    notify(sink, ev);
    return report;
}

} // namespace novaq
