#include "novaq/pipeline/compress.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/encoder.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/model_files.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/cluster_work.h"
#include "novaq/pipeline/compress_steps.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/job_progress.h"
#include "novaq/pipeline/planner.h"
#include "novaq/text/tokenizer.h"

#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>

namespace novaq {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The codec the options ask for (the --bits preset, or the expert d/b1/b2, with --subspaces);
// with a target (--target-size / --target-bits) the smallest preset in those subspaces, where
// the fit starts (each tensor's record has its own).
CodecSpec resolveCodec(const CompressOptions& options)
{
    const bool targeted = options.targetBytes > 0 || options.targetBits > 0;
    return targeted ? CodecSpec::preset(kBitsPresets.front().bits, options.codec.subspaces()) : options.codec;
}

// The phases one tensor spent its time in (TensorCompressor::compress) added to a total.
void addTensorPhases(PhaseSeconds& into, const PhaseSeconds& tensor)
{
    into.targets += tensor.targets;
    into.encoding += tensor.encoding;
    into.refit += tensor.refit;
}

// One run of compressModel, step by step (compress_steps.h has the steps that stand alone).
//
// The order of the tensors: with calibration text, the model's matrices go first, in model
// order (each fitted to what the compressed layers before it produce), then everything else in
// file order. The work split (cluster.h): tensors that can be compressed at the same time form
// a step (q/k/v of a block, gate/up, ..., and all tensors without calibration); each step is
// shared among the ranks by estimated cost. A single process computes everything.
// A tensor is computed (by the rank that owns it), then finished in order on every rank: the
// calibration continues with it everywhere and rank 0 writes it.
class CompressRun {
public:
    CompressRun(const CompressOptions& options, ProgressSink* sink, const CancelToken* cancel)
        : m_options(options), m_sink(sink), m_cancel(cancel), m_ranks(cluster())
    {}

    ModelReport run();

private:
    void plan(const PlanOptions& planOptions);
    void describeRun(const PlanOptions& planOptions);
    void startCalibration();
    void openOutput();
    void splitWork();
    void compressAt(size_t pos);
    void replanForTarget(size_t i);
    void finishNext();
    void joinSharedStatistics(size_t p);
    void receiveOutcome(size_t p, bool isCalibrated, TensorOutcome& out);
    void continueCalibration(size_t i, const TensorOutcome& out);
    void writeTensor(size_t p, TensorOutcome& out);
    void addCalibrationSeconds();
    void reportRankShares() const;
    void writeFile();
    bool calibrated(size_t i) const { return m_calibrator && m_calibrator->covers(i); }
    double costOf(size_t i) const
    {
        return double(m_reader->tensors()[i].numel()) * (m_plans[i].quantize ? 1.0 : 1.0 / 64) + 1.0;
    }

    const CompressOptions& m_options;
    ProgressSink* m_sink;
    const CancelToken* m_cancel;
    Cluster& m_ranks;
    std::unique_ptr<ModelReader> m_reader;
    std::vector<std::string> m_hosts;
    std::optional<TensorCompressor> m_compressor;
    std::optional<JobProgress> m_progress;
    ModelReport m_report;

    // The plan. With a target, the plan of the tensors not written yet is made again before each
    // one from the bytes the written ones really took (the estimate is an upper bound: a tensor
    // without outlier columns stores no column scales), so the savings buy later tensors more bits.
    std::vector<TensorPlan> m_plans;
    std::optional<TargetFit> m_fit;
    std::vector<int> m_fitDone; // with a target: per tensor, its option once planned for good
    uint64_t m_fitSpent = 0;    // with a target: the bytes written so far

    std::unique_ptr<Calibrator> m_calibrator;
    std::vector<size_t> m_order; // the tensors in the order they are compressed

    // The work split, per position in m_order.
    std::vector<size_t> m_stepStart;
    std::vector<int> m_owner;
    std::vector<TensorOutcome> m_held; // computed here, not yet finished
    std::vector<double> m_rankSeconds;
    size_t m_finished = 0, m_computedHere = 0;

    // The file (rank 0).
    uint16_t m_minor = kNovaqMinor;
    std::optional<NovaqWriter> m_writer;
    nlohmann::json m_records = nlohmann::json::array();
};

ModelReport CompressRun::run()
{
    const auto t0 = Clock::now();
    const bool targeted = m_options.targetBytes > 0 || m_options.targetBits > 0;
    const CodecSpec spec = resolveCodec(m_options);
    checkRunOptions(m_options, targeted);

    m_reader = openOnEveryRank(m_options.input, m_cancel);
    m_hosts = m_ranks.single() ? std::vector<std::string>{} : rankHosts(m_cancel);
    m_compressor.emplace(*m_reader, m_options, m_cancel);
    checkBeforeCompressing(*m_reader, m_compressor->weights(), m_cancel);
    PlanOptions planOptions;
    planOptions.codec = spec;
    plan(planOptions);

    std::optional<tbb::global_control> threadLimit;
    if (m_options.threads > 0)
        threadLimit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(m_options.threads));

    describeRun(planOptions);
    startCalibration();
    m_progress->jobStarted();
    openOutput();
    splitWork();
    for (size_t pos = 0; pos < m_order.size(); ++pos)
        if (m_owner[pos] == m_ranks.rank())
            compressAt(pos);
    while (m_finished < m_order.size())
        finishNext();
    m_ranks.flush(m_cancel);
    addCalibrationSeconds();
    if (m_ranks.rank() != 0) { // rank 0 writes the file and reports
        m_report.seconds = secondsSince(t0);
        return std::move(m_report);
    }
    reportRankShares();
    writeFile();
    m_report.seconds = secondsSince(t0);
    m_progress->jobFinished(0.0);
    return std::move(m_report);
}

void CompressRun::plan(const PlanOptions& planOptions)
{
    if (m_options.targetBytes > 0 || m_options.targetBits > 0) {
        m_fit =
            fitToTarget(*m_reader, m_options.input, m_options.targetBytes, m_options.targetBits,
                        m_options.codec.subspaces(), m_options.targetText.empty() ? "the target" : m_options.targetText,
                        attachedTokenizerBytes(m_options), m_options.calibration, m_cancel);
        m_plans = m_fit->plans;
        m_fitDone.assign(m_plans.size(), -1);
    } else {
        m_plans = planModel(*m_reader, planOptions);
    }
}

// The report's description of the run (source, settings) and the progress of its tensors.
void CompressRun::describeRun(const PlanOptions& planOptions)
{
    const auto& tensors = m_reader->tensors();
    uint64_t totalParams = 0;
    size_t maxNumel = 0;
    for (const TensorInfo& t : tensors) {
        totalParams += static_cast<uint64_t>(t.numel());
        maxNumel = std::max(maxNumel, static_cast<size_t>(t.numel()));
    }
    m_progress.emplace(m_sink, tensors.size(), totalParams);
    m_compressor->weights().reserve(maxNumel);
    m_report.output = m_options.output;
    m_report.source = m_options.sourceLabel.empty() ? m_options.input.string() : m_options.sourceLabel;
    m_report.sourceFormat = std::string(formatName(m_reader->format()));
    m_report.architecture = m_reader->architecture();
    m_report.sourceBytes = m_reader->tensorBytes();
    m_report.settings = compressSettings(m_options, planOptions, m_fit ? &*m_fit : nullptr);
}

void CompressRun::startCalibration()
{
    if (!m_options.calibration.empty()) {
        (void)llamaConfig(*m_reader); // an architecture we cannot run is the first thing to say
        const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(*m_reader, m_options.input);
        CalibrationOptions calibrationOptions;
        calibrationOptions.text = m_options.calibration;
        const LlamaConfig shape = llamaConfig(*m_reader);
        const int64_t widest = std::max({shape.dim, shape.qDim(), shape.hiddenDim});
        calibrationOptions.maxTokens =
            m_options.calibrationTokens > 0 ? m_options.calibrationTokens : defaultCalibrationTokens(widest);
        m_calibrator = std::make_unique<Calibrator>(*m_reader, *tokenizer, calibrationOptions, m_cancel);
        m_order = m_calibrator->order();
        m_report.settings["calibration"] = {{"text", m_options.calibration.filename().string()},
                                            {"tokens", m_calibrator->tokens()},
                                            {"tokens_from", m_options.calibrationTokens > 0 ? "option" : "layer width"},
                                            {"widest_input", widest},
                                            {"damping", calibrationOptions.damping}};
        m_report.blockPhases.resize(static_cast<size_t>(m_calibrator->blocks()) + 2);
    }
    for (size_t i = 0; i < m_reader->tensors().size(); ++i)
        if (!calibrated(i))
            m_order.push_back(i);
}

void CompressRun::openOutput()
{
    // GGUF blocks kept as they are need format 1.1; every other file stays 1.0, byte for byte.
    bool keepsBlocks = std::any_of(m_plans.begin(), m_plans.end(), [](const TensorPlan& p) { return p.keepSource; });
    if (m_fit) // a later plan may keep blocks the first one did not
        for (const auto& o : m_fit->options)
            keepsBlocks =
                keepsBlocks || std::any_of(o.begin(), o.end(), [](const FitOption& f) { return f.plan.keepSource; });
    m_minor = keepsBlocks ? kNovaqMinorGguf : kNovaqMinor;
    if (m_ranks.rank() == 0)
        m_writer.emplace(m_options.output, m_minor);
    if (m_writer && !m_ranks.single())
        setScratchFile(m_writer->temporaryPath());
}

void CompressRun::splitWork()
{
    m_stepStart.assign(m_order.size(), 0);
    m_owner.assign(m_order.size(), 0);
    std::vector<double> rankLoad(static_cast<size_t>(m_ranks.size()), 0.0);
    for (size_t p = 0, end = 0; p < m_order.size(); p = end) {
        const bool shared = calibrated(m_order[p]);
        for (end = p + 1; end < m_order.size(); ++end) {
            const bool next = calibrated(m_order[end]);
            if (next != shared ||
                (shared && m_calibrator->shareKey(m_order[end]) != m_calibrator->shareKey(m_order[p])))
                break;
        }
        std::vector<double> costs;
        for (size_t q = p; q < end; ++q) {
            m_stepStart[q] = p;
            costs.push_back(costOf(m_order[q]));
        }
        const std::vector<int> owners = splitByCost(costs, rankLoad);
        std::copy(owners.begin(), owners.end(), m_owner.begin() + static_cast<std::ptrdiff_t>(p));
    }
    m_held.resize(m_order.size());
    m_rankSeconds.assign(static_cast<size_t>(m_ranks.size()), 0.0);
}

// Compresses the tensor at `pos` of the order (this rank owns it), after the steps before it.
void CompressRun::compressAt(size_t pos)
{
    while (m_finished < m_stepStart[pos]) // the steps before this one, on every rank
        finishNext();
    const size_t i = m_order[pos];
    checkCancel(m_cancel);
    const bool isCalibrated = calibrated(i);
    const TensorInfo& info = m_reader->tensors()[i];
    if (m_fit)
        replanForTarget(i);
    m_progress->tensorStarted(i, info.name);
    const auto numel = static_cast<uint64_t>(info.numel());
    const ProgressFn progress = [&](const ProgressStep& step) {
        m_progress->tensorProgress(i, info.name, numel, step.fraction(), step.stage);
    };
    PhaseSeconds phases;
    m_held[pos] = m_compressor->compress(i, m_plans[i], isCalibrated ? m_calibrator.get() : nullptr, progress, phases);
    // This tensor's share of the run's phases (and of its block's, when calibrated).
    addTensorPhases(m_report.phases, phases);
    if (isCalibrated)
        addTensorPhases(m_report.blockPhases[static_cast<size_t>(m_calibrator->blockOf(i) + 1)], phases);
    if (++m_computedHere == 1)
        testFailurePoint();
    if (isCalibrated && !m_ranks.single())
        return; // finished with its step, on every rank
    if (m_ranks.rank() != 0) {
        m_ranks.send(packOutcome(m_held[pos]), 0, m_cancel);
        m_held[pos] = {};
        return;
    }
    while (m_finished <= pos)
        finishNext();
}

// A target: the budget left after the tensors written so far is spent again on the tensors
// not planned for good, and tensor `i` keeps its option from now on.
void CompressRun::replanForTarget(size_t i)
{
    const uint64_t budget = m_fit->targetBytes - std::min(m_fit->targetBytes, m_fit->fixedBytes + m_fitSpent);
    const std::vector<size_t> choice = allocateBudget(m_fit->options, budget, m_fitDone);
    for (size_t k = 0; k < m_plans.size(); ++k)
        if (m_fitDone[k] < 0)
            m_plans[k] = m_fit->options[k][choice[k]].plan;
    m_fitDone[i] = static_cast<int>(choice[i]);
}

// Finishes the next tensor in order: every rank continues the calibration with it, rank 0
// writes it. Its bytes come from the rank that computed it.
void CompressRun::finishNext()
{
    const size_t p = m_finished++;
    const size_t i = m_order[p];
    const bool isCalibrated = calibrated(i);
    if (!isCalibrated && m_ranks.rank() != 0)
        return; // already sent to rank 0
    if (isCalibrated && !m_ranks.single() && p == m_stepStart[p])
        joinSharedStatistics(p);
    TensorOutcome out = std::move(m_held[p]);
    m_held[p] = {};
    if (!m_ranks.single())
        receiveOutcome(p, isCalibrated, out);
    if (out.rec.encoding == TensorEncoding::Gguf && !out.rec.ggml) // a message carries no pointer
        out.rec.ggml = ggmlTypeByName(m_reader->tensors()[i].storage);
    if (isCalibrated)
        continueCalibration(i, out);
    if (m_ranks.rank() != 0)
        return;
    writeTensor(p, out);
}

// The step's statistics are a collective computation: ranks without a matrix of the step to
// quantize take part here.
void CompressRun::joinSharedStatistics(size_t p)
{
    std::optional<size_t> first;
    bool mine = false;
    for (size_t q = p; q < m_order.size() && m_stepStart[q] == p; ++q)
        if (m_plans[m_order[q]].quantize) {
            first = first.value_or(q);
            mine = mine || m_owner[q] == m_ranks.rank();
        }
    if (first && !mine)
        (void)m_calibrator->statistics(m_order[*first]);
}

// A cluster: the outcome at `p` from the rank that computed it (calibrated: to every rank).
void CompressRun::receiveOutcome(size_t p, bool isCalibrated, TensorOutcome& out)
{
    std::vector<std::byte> bytes;
    if (m_owner[p] == m_ranks.rank() && isCalibrated)
        bytes = packOutcome(out);
    if (isCalibrated)
        m_ranks.broadcastBytes(bytes, m_owner[p], m_cancel);
    else if (m_owner[p] != m_ranks.rank())
        bytes = m_ranks.receive(m_owner[p], m_cancel);
    if (m_owner[p] != m_ranks.rank())
        out = unpackOutcome(bytes);
}

// Later layers see what tensor `i` became: its decoded values, or (kept at 16 bits or more)
// its original ones.
void CompressRun::continueCalibration(size_t i, const TensorOutcome& out)
{
    const TensorInfo& info = m_reader->tensors()[i];
    const auto numel = static_cast<size_t>(info.numel());
    if (out.rec.encoding == TensorEncoding::Novaq) {
        if (out.What.empty()) { // computed on another rank: its decoded values
            std::vector<float> What(numel);
            decode(deserialize(out.payload, info.rows(), info.cols(), out.rec.codec, out.rec.colScale), What);
            m_calibrator->done(i, What);
        } else {
            m_calibrator->done(i, out.What);
        }
    } else {
        std::vector<float>& W = m_compressor->weights();
        W.resize(numel);
        m_reader->readFloat(i, W);
        m_calibrator->done(i, W);
    }
    m_reader->release(i);
}

// Rank 0: the tensor's payload into the file, its record into the manifest, its figures into
// the report.
void CompressRun::writeTensor(size_t p, TensorOutcome& out)
{
    const size_t i = m_order[p];
    const TensorInfo& info = m_reader->tensors()[i];
    const auto numel = static_cast<size_t>(info.numel());
    TensorRecord& rec = out.rec;
    setSourceFields(rec, info); // a message from another rank carries none of them
    checkCancel(m_cancel);
    rec.data = m_writer->writeSection(out.payload);
    rec.bytesOut = out.payload.size();
    if (m_fit) // one process: written before the next tensor is planned
        m_fitSpent += (out.payload.size() + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign +
                      m_fit->options[i][static_cast<size_t>(m_fitDone[i])].record;
    rec.sqnrDb = sqnrDb(rec.relError);
    rec.effectiveBits = numel ? 8.0 * double(out.payload.size()) / double(numel) : 0.0;
    m_records.push_back(rec.toJson());
    m_report.tensors.push_back(tensorResult(rec, numel, out));
    m_rankSeconds[static_cast<size_t>(m_owner[p])] += out.seconds;
    m_progress->tensorFinished(i, info.name, numel, &m_report.tensors.back());
}

void CompressRun::addCalibrationSeconds()
{
    if (!m_calibrator)
        return;
    for (size_t b = 0; b < m_report.blockPhases.size(); ++b) {
        const CalibrationSeconds& s = m_calibrator->seconds()[b];
        m_report.blockPhases[b].teacher = s.teacher;
        m_report.blockPhases[b].statistics = s.statistics;
        m_report.phases.teacher += s.teacher;
        m_report.phases.statistics += s.statistics;
    }
}

// A cluster run: each rank's share of the work, for the caller (CompressOptions::shares).
void CompressRun::reportRankShares() const
{
    if (m_ranks.single() || !m_options.shares)
        return;
    std::vector<RankShare>& shares = *m_options.shares;
    double totalCost = 0;
    shares.assign(static_cast<size_t>(m_ranks.size()), RankShare{});
    for (int r = 0; r < m_ranks.size(); ++r) {
        RankShare& share = shares[static_cast<size_t>(r)];
        share.rank = r;
        share.host = r < static_cast<int>(m_hosts.size()) ? m_hosts[static_cast<size_t>(r)] : std::string();
        share.seconds = m_rankSeconds[static_cast<size_t>(r)];
    }
    for (size_t p = 0; p < m_order.size(); ++p) {
        RankShare& share = shares[static_cast<size_t>(m_owner[p])];
        ++share.tensors;
        share.params += static_cast<uint64_t>(m_reader->tensors()[m_order[p]].numel());
        share.cost += costOf(m_order[p]);
        totalCost += costOf(m_order[p]);
    }
    for (RankShare& share : shares)
        share.cost = totalCost > 0 ? share.cost / totalCost : 0.0;
}

// Rank 0: the attachments after the tensors, then the manifest; the file takes its name.
void CompressRun::writeFile()
{
    // On request the tokenizer goes along, so the .novaq file runs (eval / generate) on its own.
    nlohmann::json attachments = nlohmann::json::array();
    for (const std::filesystem::path& file :
         m_options.attachTokenizer ? tokenizerFilesBeside(m_options.input) : std::vector<std::filesystem::path>{}) {
        const std::string text = readTextFile(file);
        const auto* data = reinterpret_cast<const std::byte*>(text.data());
        attachments.push_back(
            {{"name", file.filename().string()}, {"data", m_writer->writeSection({data, text.size()}).toJson()}});
    }
    const nlohmann::json manifest =
        manifestJson(m_options, *m_reader, m_report, m_minor, std::move(m_records), attachments);
    checkCancel(m_cancel);
    m_writer->commit(manifest);
    setScratchFile({});
    std::error_code ec;
    m_report.fileBytes = std::filesystem::file_size(m_options.output, ec);
}

} // namespace

std::filesystem::path demoModelPath(const std::filesystem::path& executable)
{
    std::vector<std::filesystem::path> candidates;
    if (const char* env = std::getenv("NOVAQ_DEMO_MODEL"); env && *env)
        candidates.emplace_back(env);
    if (!executable.empty()) {
        const std::filesystem::path data = std::filesystem::path("share") / "novaq-studio" / "models" / "kjv-llama-7m";
        candidates.push_back(executable.parent_path() / ".." / data);
        candidates.push_back(executable.parent_path() / ".." / ".." / data); // novaq-net, in libexec/novaq
    }
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
    return CompressRun(options, sink, cancel).run();
}

} // namespace novaq
