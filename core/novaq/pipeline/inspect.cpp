#include "novaq/pipeline/inspect.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/encoder.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/planner.h"
#include "novaq/pipeline/report.h"
#include "novaq/pipeline/sensitivity.h"
#include "novaq/runtime/llama.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <tuple>

namespace novaq {

namespace {

// Manifest bytes per tensor record (name, shape, codec, section, stats) and per file; the
// estimate errs high. Measured on the demo model: 366 bytes a record, config included.
constexpr uint64_t kManifestPerTensor = 400;
constexpr uint64_t kManifestBase = 2048;

uint64_t align64(uint64_t n) { return (n + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign; }

std::string plannedAs(const TensorPlan& plan, const TensorInfo& info)
{
    if (plan.keepSource)
        return info.storage;
    if (!plan.quantize)
        return std::string(dtypeInfo(plan.keepAs).name);
    return codecLabel(plan.config);
}

std::string typeName(const TensorInfo& info)
{
    return info.storage.empty() ? std::string(dtypeInfo(info.dtype).name) : info.storage;
}

nlohmann::json breakdownJson(const EstimateBreakdown& b)
{
    return {{"quantized_bytes", b.quantizedBytes},
            {"kept_bytes", b.keptBytes},
            {"overhead_bytes", b.overheadBytes},
            {"quantized_params", b.quantizedParams},
            {"kept_params", b.keptParams},
            {"kept_16bit_params", b.keptAt16Params},
            {"kept_source_params", b.keptSourceParams},
            {"nominal_bits", b.nominalBits},
            {"effective_bits", b.effectiveBits},
            {"kept_extra_bits", b.keptExtraBits},
            {"quantized_extra_bits", b.quantizedExtraBits},
            {"file_extra_bits", b.fileExtraBits}};
}

} // namespace

uint64_t ModelInspection::params() const noexcept
{
    uint64_t n = 0;
    for (const TensorInspection& t : tensors)
        n += static_cast<uint64_t>(t.info.numel());
    return n;
}

uint64_t ModelInspection::sourceBytes() const noexcept
{
    uint64_t n = 0;
    for (const TensorInspection& t : tensors)
        n += t.info.nbytes;
    return n;
}

uint64_t ModelInspection::quantizedParams() const noexcept
{
    uint64_t n = 0;
    for (const TensorInspection& t : tensors)
        if (t.quantize)
            n += static_cast<uint64_t>(t.info.numel());
    return n;
}

uint64_t ModelInspection::estimatedFileBytes() const noexcept
{
    if (fixedBytes > 0) {
        uint64_t n = fixedBytes;
        for (const TensorInspection& t : tensors)
            n += align64(t.estimatedBytes);
        return n;
    }
    uint64_t n = 2 * kNovaqAlign + kManifestBase + (config.is_null() ? 0 : config.dump().size()) + metadataBytes;
    for (const TensorInspection& t : tensors)
        n += align64(t.estimatedBytes) + kManifestPerTensor;
    return n;
}

double ModelInspection::estimatedEffectiveBits() const noexcept
{
    const uint64_t p = params();
    return p ? 8.0 * double(estimatedFileBytes()) / double(p) : 0.0;
}

double ModelInspection::sourceBitsPerWeight() const noexcept
{
    const uint64_t p = params();
    return p ? 8.0 * double(sourceBytes()) / double(p) : 0.0;
}

bool ModelInspection::sourceAlreadyCompressed() const noexcept { return params() > 0 && sourceBitsPerWeight() < 15.5; }

bool ModelInspection::notSmallerThanSource() const noexcept
{
    return !tensors.empty() && estimatedFileBytes() >= sourceBytes();
}

EstimateBreakdown ModelInspection::breakdown() const noexcept
{
    EstimateBreakdown b;
    for (const TensorInspection& t : tensors) {
        const auto n = static_cast<uint64_t>(t.info.numel());
        if (t.quantize) {
            b.quantizedBytes += t.estimatedBytes;
            b.quantizedParams += n;
            b.moreBitsForSomeRoles = b.moreBitsForSomeRoles || t.reason.starts_with("quantized, more bits");
            continue;
        }
        b.keptBytes += t.estimatedBytes;
        b.keptParams += n;
        if (t.keepSource) {
            b.keptSourceParams += n;
            continue;
        }
        b.keptAt16Params += n;
        const TensorRole role = tensorRole(t.info.name);
        if (t.info.shape.size() < 2)
            b.keptNorms = true;
        else if (role == TensorRole::Embedding || role == TensorRole::Output)
            b.keptEmbedding = true;
        else
            b.keptSmall = true;
    }
    const uint64_t file = estimatedFileBytes();
    b.overheadBytes = file - std::min(file, b.quantizedBytes + b.keptBytes);
    const uint64_t p = params();
    const double bits = codec.bits();
    b.nominalBits = bits;
    if (p == 0)
        return b;
    const double P = double(p);
    b.effectiveBits = 8.0 * double(file) / P;
    b.keptExtraBits = (8.0 * double(b.keptBytes) - bits * double(b.keptParams)) / P;
    b.quantizedExtraBits = (8.0 * double(b.quantizedBytes) - bits * double(b.quantizedParams)) / P;
    b.fileExtraBits = 8.0 * double(b.overheadBytes) / P;
    return b;
}

std::string ModelInspection::extraBitsText() const
{
    const EstimateBreakdown b = breakdown();
    std::vector<std::pair<double, std::string>> parts;
    if (b.keptExtraBits >= 0.05) {
        std::vector<std::string> kinds;
        if (b.keptEmbedding)
            kinds.emplace_back("the embedding");
        if (b.keptSmall)
            kinds.emplace_back("small tensors");
        if (b.keptNorms)
            kinds.emplace_back("norms");
        std::string what;
        for (size_t k = 0; k < kinds.size(); ++k)
            what += (k == 0 ? "" : k + 1 == kinds.size() ? " and " : ", ") + kinds[k];
        if (b.keptAt16Params == 0)
            what = "tensors kept in the source's encoding";
        else if (b.keptSourceParams > 0)
            what += " kept at 16 bits and tensors kept in the source's encoding";
        else
            what += " kept at 16 bits";
        parts.emplace_back(b.keptExtraBits, what);
    }
    if (b.quantizedExtraBits >= 0.05)
        parts.emplace_back(b.quantizedExtraBits, b.moreBitsForSomeRoles
                                                     ? "codebooks, scales and more bits for the embedding and output"
                                                     : "codebooks and scales");
    if (b.fileExtraBits >= 0.05)
        parts.emplace_back(b.fileExtraBits, "the manifest and alignment");
    std::stable_sort(parts.begin(), parts.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    std::string text;
    char number[32];
    for (size_t k = 0; k < parts.size(); ++k) {
        std::snprintf(number, sizeof number, "%.1f", parts[k].first);
        text +=
            (k == 0 ? "" : "; ") + parts[k].second + " add" + (k == 0 ? " " : " ") + number + (k == 0 ? " bits" : "");
    }
    return text;
}

std::string ModelInspection::sourceText() const
{
    if (!sourceAlreadyCompressed())
        return {};
    char text[160];
    std::snprintf(text, sizeof text, "this model is already %.1f bits per weight", sourceBitsPerWeight());
    return text;
}

// --- The --fit-memory part of `inspect` (pipeline/fit_memory.h); kept apart from the rest.
namespace {

nlohmann::json runMemoryJson(const RunMemory& r)
{
    if (r.limit == 0)
        return nullptr;
    return {{"option", r.text},           {"memory_bytes", r.limit},     {"context", r.context},
            {"weights_bytes", r.weights}, {"kv_cache_bytes", r.kvCache}, {"buffers_bytes", r.scratch},
            {"total_bytes", r.total()}};
}

std::string runMemoryText(const RunMemory& r)
{
    if (r.limit == 0)
        return {};
    char line[512];
    std::snprintf(line, sizeof line,
                  "fit memory              %s: runs in about %s of %s (weights %s as the runtime holds them, KV "
                  "cache %s at %lld tokens, buffers %s)\n",
                  r.text.c_str(), humanBytes(r.total()).c_str(), humanBytes(r.limit).c_str(),
                  humanBytes(r.weights).c_str(), humanBytes(r.kvCache).c_str(), static_cast<long long>(r.context),
                  humanBytes(r.scratch).c_str());
    return line;
}

} // namespace

nlohmann::json ModelInspection::toJson() const
{
    nlohmann::json rows = nlohmann::json::array();
    for (const TensorInspection& t : tensors)
        rows.push_back({{"name", t.info.name},
                        {"shape", t.info.shape},
                        {"type", typeName(t.info)},
                        {"bytes", t.info.nbytes},
                        {"params", t.info.numel()},
                        {"quantize", t.quantize},
                        {"planned_as", t.plannedAs},
                        {"reason", t.reason},
                        {"keep_source", t.keepSource},
                        {"estimated_bytes", t.estimatedBytes}});
    nlohmann::json filesJson = nlohmann::json::array();
    for (const auto& f : files)
        filesJson.push_back(f.string());
    const uint64_t est = estimatedFileBytes();
    nlohmann::json target;
    if (targetBytes > 0)
        target = {{"option", targetText},
                  {"bytes", targetBytes},
                  {"bits", params() ? 8.0 * double(targetBytes) / double(params()) : 0.0},
                  {"min_bytes", targetMinBytes},
                  {"max_bytes", targetMaxBytes},
                  {"predicted_error", predictedError}};
    if (targetBytes > 0 && sensitivityTokens > 0) {
        target["allocation"] = "sensitivity";
        target["sensitivity_tokens"] = sensitivityTokens;
        target["sensitivity_seconds"] = sensitivitySeconds;
        target["predicted_kl"] = predictedKl;
    }
    if (targetBytes > 0 && !allocationNote.empty())
        target["allocation"] = allocationNote;
    return {{"path", path.string()},
            {"format", format},
            {"architecture", architecture},
            {"runtime", runtime},
            {"files", filesJson},
            {"config", config},
            {"settings",
             {{"bits", codec.bits()},
              {"d", codec.resolve().d},
              {"b1", codec.resolve().b1},
              {"b2", codec.resolve().b2},
              {"subspaces", codec.subspaces()}}},
            {"tensors", rows},
            {"target", target},
            {"fit_memory", runMemoryJson(runMemory)},
            {"totals",
             {{"tensors", tensors.size()},
              {"params", params()},
              {"quantized_params", quantizedParams()},
              {"source_bytes", sourceBytes()},
              {"estimated_file_bytes", est},
              {"estimated_effective_bits", estimatedEffectiveBits()},
              {"estimated_ratio_vs_source", est ? double(sourceBytes()) / double(est) : 0.0},
              {"estimated_ratio_vs_16bit", est ? 2.0 * double(params()) / double(est) : 0.0},
              {"source_bits_per_weight", sourceBitsPerWeight()},
              {"source_already_compressed", sourceAlreadyCompressed()},
              {"not_smaller_than_source", notSmallerThanSource()},
              {"breakdown", breakdownJson(breakdown())},
              {"extra_bits", extraBitsText()}}}};
}

ModelInspection inspectModel(const std::filesystem::path& path, const CodecSpec& codec)
{
    const std::unique_ptr<ModelReader> reader = openModel(path);
    return inspectModel(*reader, path, codec);
}

ModelInspection inspectModel(const ModelReader& model, const std::filesystem::path& path, const CodecSpec& codec)
{
    const ModelReader* reader = &model;
    ModelInspection out;
    out.path = path;
    out.format = std::string(formatName(reader->format()));
    out.architecture = reader->architecture();
    try {
        const LlamaConfig c = llamaConfig(*reader);
        out.runtime = describeConfig(c);
        out.runtime["runs"] = true;
        out.runtimeText = describeConfigText(c);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Unsupported && e.kind() != ErrorKind::InvalidInput)
            throw;
        out.runtime = {{"runs", false}, {"reason", e.what()}};
        out.runtimeText = std::string("cannot run it (compression works): ") + e.what();
    }
    out.files = reader->files();
    const nlohmann::json& meta = reader->metadata();
    out.config = meta.contains("config") ? meta["config"] : nlohmann::json();
    // The manifest carries the source's metadata (a GGUF file's tokenizer among it) as JSON.
    if (const auto it = meta.find("format_metadata"); it != meta.end() && !it->is_null())
        out.metadataBytes = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
    out.codec = codec;
    PlanOptions options; // as compressModel plans (compress.cpp): a preset balanced, expert settings as given
    options.codec = codec;
    for (const TensorPlan& plan : planModel(*reader, options)) {
        TensorInspection t;
        t.info = reader->tensors()[plan.index];
        t.quantize = plan.quantize;
        t.config = plan.config;
        t.reason = plan.reason;
        t.plannedAs = plannedAs(plan, t.info);
        t.estimatedBytes = plan.estimatedBytes;
        t.keepSource = plan.keepSource;
        out.tensors.push_back(std::move(t));
    }
    return out;
}

TargetFit targetRange(const ModelReader& reader, const std::filesystem::path& path, int subspaces, uint64_t extraBytes,
                      const std::vector<double>* sensitivity)
{
    const CodecSpec smallest = CodecSpec::preset(kBitsPresets.front().bits, subspaces);
    TargetFit fit;
    fit.inspection = inspectModel(reader, path, smallest);
    ModelInspection& m = fit.inspection;
    {
        // The manifest as compressModel writes it, but the tensor records (FitOption::record):
        // settings, source (its label and absolute path), config and the source's metadata.
        std::error_code ec;
        uint64_t manifest = 768 + 2 * std::filesystem::absolute(path, ec).string().size() +
                            (m.config.is_null() ? 0 : m.config.dump().size()) + m.metadataBytes;
        fit.fixedBytes = 2 * kNovaqAlign + manifest + kNovaqAlign + extraBytes; // + the manifest's alignment
    }
    fit.options = fitOptions(reader, subspaces, sensitivity);
    fit.minBytes = fit.maxBytes = fit.fixedBytes;
    for (const auto& o : fit.options) {
        fit.minBytes += o.front().cost;
        fit.maxBytes += o.back().cost;
    }
    return fit;
}

TargetFit fitToTarget(const ModelReader& reader, const std::filesystem::path& path, uint64_t targetBytes,
                      double targetBits, int subspaces, const std::string& what, uint64_t extraBytes,
                      const std::filesystem::path& calibration, const CancelToken* cancel)
{
    const std::shared_ptr<const Sensitivity> sensitivity =
        calibration.empty() ? nullptr : sensitivityFor(reader, path, calibration, cancel);
    TargetFit fit = targetRange(reader, path, subspaces, extraBytes, sensitivity ? &sensitivity->perTensor : nullptr);
    ModelInspection& m = fit.inspection;
    const uint64_t params = m.params();
    if (targetBits > 0)
        targetBytes = static_cast<uint64_t>(std::floor(targetBits * double(params) / 8.0));
    fit.targetBytes = targetBytes;
    auto bits = [&](uint64_t bytes) { return params ? 8.0 * double(bytes) / double(params) : 0.0; };
    if (targetBytes < fit.minBytes || targetBytes > fit.maxBytes) {
        char text[512];
        std::snprintf(text, sizeof text,
                      "%s (%s bytes, %.3f bits per weight) is %s than this model can be at these settings: the "
                      "reachable range is %s to %s bytes (%s to %s, %.3f to %.3f bits per weight); choose a target "
                      "in it",
                      what.c_str(), withThousands(targetBytes).c_str(), bits(targetBytes),
                      targetBytes < fit.minBytes ? "smaller" : "larger", withThousands(fit.minBytes).c_str(),
                      withThousands(fit.maxBytes).c_str(), humanBytes(fit.minBytes).c_str(),
                      humanBytes(fit.maxBytes).c_str(), bits(fit.minBytes), bits(fit.maxBytes));
        throw Error(ErrorKind::InvalidArgument, text);
    }
    fit.choice = allocateBudget(fit.options, targetBytes - fit.fixedBytes);
    uint64_t records = 0;
    for (size_t i = 0; i < fit.options.size(); ++i)
        records += fit.options[i][fit.choice[i]].record;
    m.fixedBytes = fit.fixedBytes + records;
    double error = 0, weight = 0;
    for (size_t i = 0; i < fit.options.size(); ++i) {
        const FitOption& o = fit.options[i][fit.choice[i]];
        fit.plans.push_back(o.plan);
        TensorInspection& t = m.tensors[i];
        t.quantize = o.plan.quantize;
        t.config = o.plan.config;
        t.reason = o.plan.reason;
        t.plannedAs = plannedAs(o.plan, t.info);
        t.estimatedBytes = o.plan.estimatedBytes;
        t.keepSource = o.plan.keepSource;
        // The role-weighted mean relative error whatever weighed the allocation, so that the
        // figure means the same with and without measured sensitivity.
        const double w = roleWeight(tensorRole(t.info.name)) * double(t.info.numel());
        error += o.plan.quantize ? w * presetRelativeError(o.presetBits) : 0.0;
        weight += w;
    }
    m.targetBytes = targetBytes;
    m.targetText = what;
    m.targetMinBytes = fit.minBytes;
    m.targetMaxBytes = fit.maxBytes;
    m.predictedError = weight > 0 ? error / weight : 0.0;
    if (!calibration.empty() && !sensitivity)
        m.allocationNote = "by the role table: measuring sensitivity would hold " +
                           humanBytes(sensitivityMemoryBytes(reader)) + " (the whole model as F32), more than " +
                           humanBytes(kSensitivityMemoryLimit);
    if (sensitivity) {
        m.sensitivityTokens = sensitivity->tokens;
        m.sensitivitySeconds = sensitivity->seconds;
        m.predictedKl = 0;
        for (size_t i = 0; i < fit.options.size(); ++i)
            m.predictedKl += fit.options[i][fit.choice[i]].error;
    }
    return fit;
}

TargetFit fitToTarget(const std::filesystem::path& path, uint64_t targetBytes, double targetBits, int subspaces,
                      const std::string& what, const std::filesystem::path& calibration)
{
    const std::unique_ptr<ModelReader> reader = openModel(path);
    return fitToTarget(*reader, path, targetBytes, targetBits, subspaces, what, 0, calibration);
}

std::string notSmallerWarning(const ModelInspection& m)
{
    if (!m.notSmallerThanSource())
        return {};
    const uint64_t est = m.estimatedFileBytes();
    std::string text = "the output (about " + humanBytes(est) + ") would not be smaller than the source (" +
                       humanBytes(m.sourceBytes()) + " of tensors)";
    if (const std::string source = m.sourceText(); !source.empty())
        text += ": " + source;
    char bits[64];
    std::snprintf(bits, sizeof bits, "; at %g bits it would be %.2f", m.codec.bits(), m.estimatedEffectiveBits());
    return text + bits + "; choose fewer bits, or keep the source file as it is";
}

std::vector<PresetEstimate> estimatePresets(const ModelReader& reader, const std::filesystem::path& path, int subspaces,
                                            int vectorLength)
{
    std::vector<PresetEstimate> out;
    for (const BitsPreset& p : bitsPresets()) {
        const CodecSpec spec = CodecSpec::presetAtLength(p, vectorLength, subspaces);
        PresetEstimate e;
        e.preset = p;
        e.inspection = inspectModel(reader, path, spec);
        e.fileBytes = e.inspection.estimatedFileBytes();
        e.effectiveBits = e.inspection.estimatedEffectiveBits();
        e.breakdown = e.inspection.breakdown();
        e.notSmallerThanSource = e.inspection.notSmallerThanSource();
        out.push_back(std::move(e));
    }
    // A preset gains nothing when one with more bits makes a file no larger (on a small model,
    // fewer bits can keep more tensors at 16 bits: their codebooks would cost more than they save).
    for (size_t i = 0; i < out.size(); ++i)
        for (size_t j = 0; j < out.size(); ++j) {
            if (out[j].inspection.codec.bits() <= out[i].inspection.codec.bits() || out[j].fileBytes > out[i].fileBytes)
                continue;
            const int best = out[i].dominatedBy;
            if (best < 0 || out[j].fileBytes < out[size_t(best)].fileBytes)
                out[i].dominatedBy = int(j);
        }
    // The useful presets by size (then, among them, by bits too), the others after them.
    std::vector<size_t> order(out.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const bool da = out[a].dominatedBy >= 0, db = out[b].dominatedBy >= 0;
        if (da != db)
            return !da;
        return out[a].fileBytes != out[b].fileBytes ? out[a].fileBytes < out[b].fileBytes
                                                    : out[a].inspection.codec.bits() < out[b].inspection.codec.bits();
    });
    size_t useful = 0;
    for (size_t r = 0; r < order.size(); ++r) {
        out[order[r]].rank = r;
        useful += out[order[r]].dominatedBy < 0 ? 1 : 0;
    }
    for (size_t r = 0; r < order.size(); ++r) {
        PresetEstimate& e = out[order[r]];
        if (e.dominatedBy >= 0)
            e.title = "no gain here";
        else if (useful == 1)
            e.title = "best here";
        else if (r == 0)
            e.title = "smallest";
        else if (r + 1 == useful)
            e.title = "best quality";
        else
            e.title = std::string(e.preset.label);
    }
    char text[256];
    for (PresetEstimate& e : out) {
        if (e.dominatedBy >= 0) {
            const PresetEstimate& d = out[size_t(e.dominatedBy)];
            std::snprintf(text, sizeof text, "gains nothing here: %s (%g bits) makes a file no larger", d.title.c_str(),
                          d.inspection.codec.bits());
            e.note = text;
            if (e.breakdown.keptAt16Params > d.breakdown.keptAt16Params)
                e.note += "; at fewer bits more tensors stay at 16 bits";
        } else if (e.notSmallerThanSource) {
            std::snprintf(text, sizeof text, "not smaller than the source, which is already %.1f bits per weight",
                          e.inspection.sourceBitsPerWeight());
            e.note = text;
        } else {
            e.note = e.inspection.extraBitsText();
        }
    }
    return out;
}

std::vector<PresetEstimate> estimatePresets(const std::filesystem::path& path, int subspaces, int vectorLength)
{
    const std::unique_ptr<ModelReader> reader = openModel(path);
    return estimatePresets(*reader, path, subspaces, vectorLength);
}

std::vector<size_t> displayOrder(const std::vector<PresetEstimate>& estimates)
{
    std::vector<size_t> order(estimates.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return estimates[a].rank < estimates[b].rank; });
    return order;
}

std::string formatInspection(const ModelInspection& m)
{
    size_t nameWidth = 6;
    for (const TensorInspection& t : m.tensors)
        nameWidth = std::max(nameWidth, t.info.name.size());
    std::ostringstream out;
    out << m.path.string() << ": " << m.format << ", architecture " << m.architecture << ", " << m.tensors.size()
        << " tensors in " << m.files.size() << " file" << (m.files.size() == 1 ? "" : "s") << "\n";
    if (!m.runtimeText.empty())
        out << "runs as: " << m.runtimeText << "\n";
    out << "\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-*s  %-14s %-7s %10s   %-20s %10s  %s\n", int(nameWidth), "tensor", "shape",
                  "type", "bytes", "planned as", "est. out", "why");
    out << line;
    for (const TensorInspection& t : m.tensors) {
        std::snprintf(line, sizeof line, "%-*s  %-14s %-7s %10s   %-20s %10s  %s\n", int(nameWidth),
                      t.info.name.c_str(), shapeToString(t.info.shape).c_str(), typeName(t.info).c_str(),
                      humanBytes(t.info.nbytes).c_str(), t.plannedAs.c_str(), humanBytes(t.estimatedBytes).c_str(),
                      t.reason.c_str());
        out << line;
    }
    const uint64_t est = m.estimatedFileBytes();
    out << "\nparameters              " << withThousands(m.params()) << " (" << withThousands(m.quantizedParams())
        << " to be quantized)\n";
    out << "source size             " << humanBytes(m.sourceBytes()) << " (" << withThousands(m.sourceBytes())
        << " bytes of tensors)\n";
    std::snprintf(line, sizeof line,
                  "estimated output        %s (%s bytes; at most, whole file)\n"
                  "estimated bits/weight   %.3f (all overhead included)\n"
                  "estimated ratio         %.2fx vs source, %.2fx vs 16-bit\n",
                  humanBytes(est).c_str(), withThousands(est).c_str(), m.estimatedEffectiveBits(),
                  est ? double(m.sourceBytes()) / double(est) : 0.0,
                  est ? 2.0 * double(m.params()) / double(est) : 0.0);
    out << line;
    if (const std::string extra = m.extraBitsText(); !extra.empty() && m.targetBytes == 0)
        out << "bits above the preset   " << extra << "\n";
    if (m.sourceAlreadyCompressed()) {
        std::snprintf(line, sizeof line, "source bits/weight      %.3f (already compressed)\n",
                      m.sourceBitsPerWeight());
        out << line;
    }
    if (const std::string warning = notSmallerWarning(m); !warning.empty())
        out << "WARNING                 " << warning << "\n";
    if (m.targetBytes > 0) {
        std::snprintf(line, sizeof line,
                      "target                  %s: %s bytes (%.3f bits/weight); reachable %s to %s bytes; "
                      "predicted error %.4f (role-weighted mean)\n",
                      m.targetText.c_str(), withThousands(m.targetBytes).c_str(),
                      m.params() ? 8.0 * double(m.targetBytes) / double(m.params()) : 0.0,
                      withThousands(m.targetMinBytes).c_str(), withThousands(m.targetMaxBytes).c_str(),
                      m.predictedError);
        out << line;
        if (m.sensitivityTokens > 0) {
            std::snprintf(line, sizeof line,
                          "allocation              by sensitivity measured on %lld calibration tokens (%.1f s); "
                          "predicted KL %.5f (first order, before the refit)\n",
                          static_cast<long long>(m.sensitivityTokens), m.sensitivitySeconds, m.predictedKl);
            out << line;
        }
        if (!m.allocationNote.empty())
            out << "allocation              " << m.allocationNote << "\n";
        out << runMemoryText(m.runMemory);
        std::snprintf(line, sizeof line, "settings                per-tensor presets (fit to target), subspaces=%d\n",
                      m.codec.subspaces());
    } else {
        const CodecConfig c = m.codec.resolve();
        std::snprintf(line, sizeof line, "settings                bits=%g d=%d b1=%d b2=%d subspaces=%d\n",
                      m.codec.bits(), c.d, c.b1, c.b2, c.subspaces);
    }
    out << line;
    return out.str();
}

// Peak working memory while one quantized tensor is compressed, R x C, vector length d,
// K subspaces, b = b1 + b2 code bits per vector, vpr = ceil(C / d) vectors per row:
//   W, the float copy compressModel reads the tensor into          4 R C
//   What, the float decode buffer it measures the error with       4 R C
//   encoder codeA + codeB, one uint32 each per vector               8 R vpr
//   per subspace (one at a time; the largest has n = R ceil(vpr / K) vectors):
//     gathered normalized vectors X (float, d each) and weights    n (4 d + 4)
//     the codes a, b of every vector (uint32)                       8 n
//     training sample T, Tw and the stage-2 residual copy of T      S (8 d + 4), S = min(n, trainVectors)
//   row statistics (rowMu, rowSd float; mu, sd double)              24 R
//   column statistics (colSq, colRms double; colScale float)        20 C
//   the packed codes of the QuantizedTensor                         ceil(R vpr b / 8)
//   the serialized payload written to the file                      payloadBytes
// Codebooks (K 2^b1 d floats and the like) are kilobytes and left out.
uint64_t tensorWorkingBytes(int64_t rows, int64_t cols, const CodecConfig& config, uint64_t payloadBytes)
{
    const auto R = static_cast<uint64_t>(std::max<int64_t>(rows, 1));
    const auto C = static_cast<uint64_t>(std::max<int64_t>(cols, 1));
    const auto d = static_cast<uint64_t>(std::max(config.d, 1));
    const auto K = static_cast<uint64_t>(std::max(config.subspaces, 1));
    const auto bits = static_cast<uint64_t>(config.b1 + config.b2);
    const uint64_t vpr = (C + d - 1) / d;
    const uint64_t n = R * ((vpr + K - 1) / K);
    const uint64_t S = std::min<uint64_t>(n, static_cast<uint64_t>(CodecParams{}.trainVectors));
    return 8 * R * C + 8 * R * vpr + n * (4 * d + 4) + 8 * n + S * (8 * d + 4) + 24 * R + 20 * C +
           (R * vpr * bits + 7) / 8 + payloadBytes;
}

uint64_t estimatedPeakBytes(const ModelInspection& inspection)
{
    uint64_t peak = 0;
    for (const TensorInspection& t : inspection.tensors)
        if (t.quantize)
            peak = std::max(peak, tensorWorkingBytes(t.info.rows(), t.info.cols(), t.config, t.estimatedBytes));
    return peak;
}

namespace {

// A measurement of this machine's encoder, made once per (codec, threads) in the process and
// kept (one cache per kind of measurement); threads 0: all cores.
template <typename T, typename Measure>
T measuredOnce(const CodecConfig& config, int threads, Measure measure)
{
    using Key = std::tuple<int, int, int, int, int>;
    static std::mutex mutex;
    static std::map<Key, T> cache;
    const Key key{config.d, config.b1, config.b2, config.subspaces, threads};
    {
        const std::lock_guard lock(mutex);
        if (const auto it = cache.find(key); it != cache.end())
            return it->second;
    }
    T value;
    if (threads > 0) {
        tbb::task_arena arena(threads);
        value = arena.execute(measure);
    } else {
        value = measure();
    }
    const std::lock_guard lock(mutex);
    return cache.emplace(key, value).first->second;
}

// The probes' weights: N(0, 1), the same every time.
std::vector<float> probeWeights(int64_t count)
{
    std::vector<float> W(static_cast<size_t>(count));
    std::mt19937_64 rng(20260101);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    for (float& x : W)
        x = gauss(rng);
    return W;
}

} // namespace

double calibratedEncodeRate(const CodecConfig& config, int threads)
{
    return measuredOnce<double>(config, threads, [&config] {
        constexpr int64_t rows = 256, cols = 1024;
        const std::vector<float> W = probeWeights(rows * cols);
        CodecParams params;
        params.config = config;
        const auto t0 = std::chrono::steady_clock::now();
        (void)encodeMatrix(W, rows, cols, params);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return double(rows * cols) / std::max(seconds, 1e-9);
    });
}

double EncodeTimes::secondsFor(int64_t rows, int64_t cols, const CodecConfig& config) const
{
    const int64_t vpr = (cols + config.d - 1) / std::max(config.d, 1);
    const double perSubspace = double(rows) * double((vpr + config.subspaces - 1) / std::max(config.subspaces, 1));
    const double sampled = std::min(1.0, perSubspace / double(CodecParams{}.trainVectors));
    return trainSeconds * sampled + secondsPerWeight * double(rows) * double(cols);
}

EncodeTimes measureEncodeTimes(const CodecConfig& config, int threads)
{
    return measuredOnce<EncodeTimes>(config, threads, [&config] {
        constexpr int64_t cols = 1024;
        const std::vector<float> W = probeWeights(2048 * cols);
        CodecParams params;
        params.config = config;
        // The best of two: on a shared machine one run measures the other jobs as much as this.
        const auto best = [&](int64_t rows) {
            double seconds = 1e30;
            for (int k = 0; k < 2; ++k) {
                const auto t0 = std::chrono::steady_clock::now();
                (void)encodeMatrix(std::span<const float>(W.data(), static_cast<size_t>(rows * cols)), rows, cols,
                                   params);
                seconds =
                    std::min(seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            return seconds;
        };
        // Both sizes sample the training cap (1024 rows of 128 vectors over 4 subspaces, and more).
        const double small = best(1024), large = best(2048);
        EncodeTimes e;
        e.secondsPerWeight = std::max(large - small, 1e-12) / double(1024 * cols);
        const double vectorsPerSubspace =
            1024.0 * double((cols / std::max(config.d, 1) + config.subspaces - 1) / std::max(config.subspaces, 1));
        e.trainSeconds = std::max(small - e.secondsPerWeight * double(1024 * cols), 0.0) /
                         std::min(1.0, vectorsPerSubspace / double(params.trainVectors));
        return e;
    });
}

double estimatedSeconds(const ModelInspection& inspection, double paramsPerSecond)
{
    if (paramsPerSecond <= 0)
        return 0;
    return double(inspection.quantizedParams()) / paramsPerSecond;
}

} // namespace novaq
