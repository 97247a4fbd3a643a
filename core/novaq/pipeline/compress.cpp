#include "novaq/pipeline/compress.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/encoder.h"
#include "novaq/codec/refine.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/model_files.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/cluster_work.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/planner.h"
#include "novaq/pipeline/teacher_targets.h"
#include "novaq/text/tokenizer.h"

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
    if (r.encoding == TensorEncoding::Gguf)
        return std::string(r.ggml->name);
    return codecLabel(r.codec);
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
    // With a target the fit starts from the smallest preset (each tensor's record has its own).
    const bool targeted = options.targetBytes > 0 || options.targetBits > 0;
    const CodecSpec spec = targeted ? CodecSpec::preset(kBitsPresets.front().bits, options.subspaces)
                                    : CodecSpec::fromOptions(options.bits, options.expert, options.subspaces);
    const CodecConfig config = spec.resolve();
    if (options.threads < 0)
        throw Error(ErrorKind::InvalidArgument, "--threads must be 0 (all cores) or more");
    if (options.output.empty())
        throw Error(ErrorKind::InvalidArgument, "no output file given");
    Cluster& ranks = cluster(); // a cluster run: rank 0 writes, every rank compresses a share
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
    std::unique_ptr<ModelReader> reader = openOnEveryRank(options.input, cancel);
    const std::vector<std::string> hosts = ranks.single() ? std::vector<std::string>{} : rankHosts(cancel);
    std::vector<float> W, What;
    checkBeforeCompressing(*reader, W, cancel);
    PlanOptions planOptions;
    planOptions.config = config;
    planOptions.bits = spec.isPreset() ? spec.bits() : 0.0; // 0: expert settings, taken as given
    std::optional<TargetFit> fit;
    std::vector<TensorPlan> plans;
    if (targeted) {
        uint64_t attached = 0; // --with-tokenizer: its files, aligned, and their manifest entries
        if (options.attachTokenizer)
            for (const auto& file : tokenizerFilesBeside(options.input)) {
                std::error_code ec;
                attached += (std::filesystem::file_size(file, ec) + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign +
                            file.filename().string().size() + 128;
            }
        fit = fitToTarget(*reader, options.input, options.targetBytes, options.targetBits, options.subspaces,
                          options.targetText.empty() ? "the target" : options.targetText, attached);
        plans = fit->plans;
    } else {
        plans = planModel(*reader, planOptions);
    }
    // With a target, the plan of the tensors not written yet is made again before each one from
    // the bytes the written ones really took (the estimate is an upper bound: a tensor without
    // outlier columns stores no column scales), so the savings buy later tensors more bits.
    std::vector<int> fitDone(targeted ? plans.size() : 0, -1);
    uint64_t fitSpent = 0;

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
    // With a target, d/b1/b2 are the smallest preset's, where the fit starts (every tensor's
    // record has its own codec).
    report.settings = {{"bits", spec.bits()},           {"d", config.d},       {"b1", config.b1}, {"b2", config.b2},
                       {"subspaces", config.subspaces}, {"seed", options.seed}};
    const CodecParams defaults;
    report.settings["kmeans_iterations"] = defaults.kmeansIterations;
    report.settings["train_vectors"] = defaults.trainVectors;
    report.settings["refit_iterations"] = defaults.refitIterations;
    report.settings["full_rounds"] = defaults.fullRounds;
    report.settings["beam"] = defaults.beamWidth;
    report.settings["outlier_fraction"] = defaults.outlierFraction;
    report.settings["outlier_threshold"] = defaults.outlierThreshold;
    report.settings["allocation"] = targeted ? "target" : planOptions.bits > 0 ? "balanced" : "uniform";
    if (targeted)
        report.settings["target"] = {{"option", options.targetText},
                                     {"bytes", fit->targetBytes},
                                     {"bits", options.targetBits},
                                     {"estimated_bytes", fit->inspection.estimatedFileBytes()},
                                     {"predicted_error", fit->inspection.predictedError}};

    // With calibration text, the model's matrices go first, in model order (each fitted to
    // what the compressed layers before it produce), then everything else in file order.
    std::unique_ptr<Calibrator> calibrator;
    TeacherTargets teacherTargets; // keeps its solve for the matrices that share an input
    std::vector<size_t> order;
    if (!options.calibration.empty()) {
        (void)llamaConfig(*reader); // an architecture we cannot run is the first thing to say
        const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(*reader, options.input);
        CalibrationOptions calibrationOptions;
        calibrationOptions.text = options.calibration;
        const LlamaConfig shape = llamaConfig(*reader);
        const int64_t widest = std::max({shape.dim, shape.qDim(), shape.hiddenDim});
        calibrationOptions.maxTokens =
            options.calibrationTokens > 0 ? options.calibrationTokens : defaultCalibrationTokens(widest);
        calibrator = std::make_unique<Calibrator>(*reader, *tokenizer, calibrationOptions, cancel);
        order = calibrator->order();
        report.settings["calibration"] = {{"text", options.calibration.filename().string()},
                                          {"tokens", calibrator->tokens()},
                                          {"tokens_from", options.calibrationTokens > 0 ? "option" : "layer width"},
                                          {"widest_input", widest},
                                          {"damping", calibrationOptions.damping}};
        report.blockPhases.resize(static_cast<size_t>(calibrator->blocks()) + 2);
    }
    for (size_t i = 0; i < tensors.size(); ++i)
        if (!calibrator || !calibrator->covers(i))
            order.push_back(i);

    ProgressEvent ev;
    ev.tensorCount = tensors.size();
    ev.kind = ProgressEvent::Kind::JobStarted;
    notify(sink, ev);

    // GGUF blocks kept as they are need format 1.1; every other file stays 1.0, byte for byte.
    bool keepsBlocks = std::any_of(plans.begin(), plans.end(), [](const TensorPlan& p) { return p.keepSource; });
    if (fit) // a later plan may keep blocks the first one did not
        for (const auto& o : fit->options)
            keepsBlocks =
                keepsBlocks || std::any_of(o.begin(), o.end(), [](const FitOption& f) { return f.plan.keepSource; });
    const uint16_t minor = keepsBlocks ? kNovaqMinorGguf : kNovaqMinor;
    std::optional<NovaqWriter> writer;
    if (ranks.rank() == 0)
        writer.emplace(options.output, minor);
    if (writer && !ranks.single())
        setScratchFile(writer->temporaryPath());
    nlohmann::json records = nlohmann::json::array();
    W.reserve(maxNumel);

    // The work split (cluster.h): tensors that can be compressed at the same time form a step
    // (q/k/v of a block, gate/up, ..., and all tensors without calibration); each step is
    // shared among the ranks by estimated cost. A single process computes everything.
    std::vector<size_t> stepStart(order.size());
    std::vector<int> owner(order.size(), 0);
    std::vector<double> rankLoad(static_cast<size_t>(ranks.size()), 0.0);
    auto costOf = [&](size_t i) { return double(tensors[i].numel()) * (plans[i].quantize ? 1.0 : 1.0 / 64) + 1.0; };
    for (size_t p = 0, end = 0; p < order.size(); p = end) {
        const bool shared = calibrator && calibrator->covers(order[p]);
        for (end = p + 1; end < order.size(); ++end) {
            const bool next = calibrator && calibrator->covers(order[end]);
            if (next != shared || (shared && calibrator->shareKey(order[end]) != calibrator->shareKey(order[p])))
                break;
        }
        std::vector<double> costs;
        for (size_t q = p; q < end; ++q) {
            stepStart[q] = p;
            costs.push_back(costOf(order[q]));
        }
        const std::vector<int> owners = splitByCost(costs, rankLoad);
        std::copy(owners.begin(), owners.end(), owner.begin() + static_cast<std::ptrdiff_t>(p));
    }
    std::vector<TensorOutcome> held(order.size()); // computed here, not yet finished
    std::vector<double> rankSeconds(static_cast<size_t>(ranks.size()), 0.0);
    size_t finished = 0, computedHere = 0;
    // Finishes the next tensor in order: every rank continues the calibration with it, rank 0
    // writes it. Its bytes come from the rank that computed it.
    auto finishNext = [&] {
        const size_t p = finished++;
        const size_t i = order[p];
        const TensorInfo& info = tensors[i];
        const bool calibrated = calibrator && calibrator->covers(i);
        if (!calibrated && ranks.rank() != 0)
            return; // already sent to rank 0
        if (calibrated && !ranks.single() && p == stepStart[p]) {
            // The step's statistics are a collective computation: ranks without a matrix of
            // the step to quantize take part here.
            std::optional<size_t> first;
            bool mine = false;
            for (size_t q = p; q < order.size() && stepStart[q] == p; ++q)
                if (plans[order[q]].quantize) {
                    first = first.value_or(q);
                    mine = mine || owner[q] == ranks.rank();
                }
            if (first && !mine)
                (void)calibrator->statistics(order[*first]);
        }
        TensorOutcome out = std::move(held[p]);
        held[p] = {};
        if (!ranks.single()) {
            std::vector<std::byte> bytes;
            if (owner[p] == ranks.rank() && calibrated)
                bytes = packOutcome(out);
            if (calibrated)
                ranks.broadcastBytes(bytes, owner[p], cancel);
            else if (owner[p] != ranks.rank())
                bytes = ranks.receive(owner[p], cancel);
            if (owner[p] != ranks.rank())
                out = unpackOutcome(bytes);
        }
        if (out.rec.encoding == TensorEncoding::Gguf && !out.rec.ggml) // a message carries no pointer
            out.rec.ggml = ggmlTypeByName(info.storage);
        const auto numel = static_cast<size_t>(info.numel());
        const bool quantized = out.rec.encoding == TensorEncoding::Novaq;
        if (calibrated) {
            if (quantized) {
                if (out.What.empty()) { // computed on another rank: its decoded values
                    out.What.resize(numel);
                    decode(deserialize(out.payload, info.rows(), info.cols(), out.rec.codec, out.rec.colScale),
                           out.What);
                }
                calibrator->done(i, out.What);
            } else { // kept (at 16 bits or more): later layers see its values
                W.resize(numel);
                reader->readFloat(i, W);
                calibrator->done(i, W);
            }
            reader->release(i);
        }
        if (ranks.rank() != 0)
            return;
        TensorRecord& rec = out.rec;
        rec.name = info.name;
        rec.shape = info.shape;
        rec.sourceDtype = info.storage.empty() ? std::string(dtypeInfo(info.dtype).name) : info.storage;
        rec.bytesIn = info.nbytes;
        checkCancel(cancel);
        rec.data = writer->writeSection(out.payload);
        rec.bytesOut = out.payload.size();
        if (fit) // one process: written before the next tensor is planned
            fitSpent += (out.payload.size() + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign +
                        fit->options[i][static_cast<size_t>(fitDone[i])].record;
        rec.sqnrDb = sqnrDb(rec.relError);
        rec.effectiveBits = numel ? 8.0 * double(out.payload.size()) / double(numel) : 0.0;
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
        result.seconds = out.seconds;
        result.outputError = rec.outputError;
        result.outputErrorUnrefined = out.unrefinedOutputError;
        report.tensors.push_back(result);
        rankSeconds[static_cast<size_t>(owner[p])] += out.seconds;
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
    };

    for (size_t pos = 0; pos < order.size(); ++pos) {
        if (owner[pos] != ranks.rank())
            continue;
        while (finished < stepStart[pos]) // the steps before this one, on every rank
            finishNext();
        const size_t i = order[pos];
        checkCancel(cancel);
        const bool calibrated = calibrator && calibrator->covers(i);
        const TensorInfo& info = tensors[i];
        if (fit) {
            const uint64_t budget = fit->targetBytes - std::min(fit->targetBytes, fit->fixedBytes + fitSpent);
            const std::vector<size_t> choice = allocateBudget(fit->options, budget, fitDone);
            for (size_t k = 0; k < plans.size(); ++k)
                if (fitDone[k] < 0)
                    plans[k] = fit->options[k][choice[k]].plan;
            fitDone[i] = static_cast<int>(choice[i]);
        }
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
        rec.sourceDtype = info.storage.empty() ? std::string(dtypeInfo(info.dtype).name) : info.storage;
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
            // original's outputs, W* = W (C + delta I) H^-1 (teacher_targets.h); quantizing towards W* instead of
            // W minimizes ||X_t W^T - X_s What^T||.
            // This tensor's share of the run's phases (and of its block's, when calibrated).
            PhaseSeconds* block =
                calibrated ? &report.blockPhases[static_cast<size_t>(calibrator->blockOf(i) + 1)] : nullptr;
            auto charge = [&](double PhaseSeconds::*phase, Clock::time_point since) {
                const double s = secondsSince(since);
                report.phases.*phase += s;
                if (block)
                    block->*phase += s;
            };
            std::vector<float> target;
            auto tp = Clock::now();
            if (calibration.C.size() > 0) {
                target = teacherTargets.solve(W, info.rows(), info.cols(), calibration.H, calibration.C,
                                              calibration.columnImportance);
                charge(&PhaseSeconds::targets, tp);
            }
            const std::span<const float> goal = target.empty() ? std::span<const float>(W) : target;
            QuantizedTensor q;
            tp = Clock::now();
            try {
                q = encodeMatrix(goal, info.rows(), info.cols(), params, cancel, onProgress);
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::InvalidInput)
                    throw;
                throw Error(e.kind(), fileOf(*reader, info) + ": tensor '" + info.name + "': " + e.what());
            }
            charge(&PhaseSeconds::encoding, tp);
            if (calibration.H.size() > 0) {
                onProgress(0.97, "refit");
                tp = Clock::now();
                const RefineResult refined = refineForOutput(q, goal, calibration.H);
                charge(&PhaseSeconds::refit, tp);
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
        } else if (plan.keepSource) { // GGUF blocks, byte for byte: decode as the source does
            const auto raw = reader->rawBytes(i);
            payload.assign(raw.begin(), raw.end());
            rec.encoding = TensorEncoding::Gguf;
            rec.ggml = ggmlTypeByName(info.storage);
            rec.relError = 0.0;
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
        reader->release(i);
        checkCancel(cancel);
        TensorOutcome& out = held[pos];
        out.rec = std::move(rec);
        out.unrefinedOutputError = unrefinedOutputError;
        out.seconds = secondsSince(tt);
        out.payload = std::move(payload);
        if (calibrated && out.rec.encoding == TensorEncoding::Novaq)
            out.What = What;
        if (++computedHere == 1)
            testFailurePoint();
        if (calibrated && !ranks.single())
            continue; // finished with its step, on every rank
        if (ranks.rank() != 0) {
            ranks.send(packOutcome(out), 0, cancel);
            out = {};
            continue;
        }
        while (finished <= pos)
            finishNext();
    }
    while (finished < order.size())
        finishNext();
    ranks.flush(cancel);
    if (calibrator)
        for (size_t b = 0; b < report.blockPhases.size(); ++b) {
            const CalibrationSeconds& s = calibrator->seconds()[b];
            report.blockPhases[b].teacher = s.teacher;
            report.blockPhases[b].statistics = s.statistics;
            report.phases.teacher += s.teacher;
            report.phases.statistics += s.statistics;
        }
    if (ranks.rank() != 0) { // rank 0 writes the file and reports
        report.seconds = secondsSince(t0);
        return report;
    }
    if (!ranks.single() && options.shares) {
        double totalCost = 0;
        options.shares->assign(static_cast<size_t>(ranks.size()), RankShare{});
        for (int r = 0; r < ranks.size(); ++r) {
            RankShare& share = (*options.shares)[static_cast<size_t>(r)];
            share.rank = r;
            share.host = r < static_cast<int>(hosts.size()) ? hosts[static_cast<size_t>(r)] : std::string();
            share.seconds = rankSeconds[static_cast<size_t>(r)];
        }
        for (size_t p = 0; p < order.size(); ++p) {
            RankShare& share = (*options.shares)[static_cast<size_t>(owner[p])];
            ++share.tensors;
            share.params += static_cast<uint64_t>(tensors[order[p]].numel());
            share.cost += costOf(order[p]);
            totalCost += costOf(order[p]);
        }
        for (RankShare& share : *options.shares)
            share.cost = totalCost > 0 ? share.cost / totalCost : 0.0;
    }

    nlohmann::json manifest;
    manifest["format"] = "novaq";
    manifest["version"] = {kNovaqMajor, minor};
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
            {{"name", file.filename().string()}, {"data", writer->writeSection({data, text.size()}).toJson()}});
    }
    if (!attachments.empty())
        manifest["attachments"] = attachments;
    checkCancel(cancel);
    writer->commit(manifest);
    setScratchFile({});

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
