#include "novaq/pipeline/inspect.h"

#include "novaq/codec/encoder.h"
#include "novaq/container/novaq_file.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/planner.h"
#include "novaq/pipeline/report.h"
#include "novaq/runtime/llama.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
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

std::string plannedAs(const TensorPlan& plan)
{
    if (!plan.quantize)
        return std::string(dtypeInfo(plan.keepAs).name);
    return "novaq d=" + std::to_string(plan.config.d) + " " + std::to_string(plan.config.b1) + "+" +
           std::to_string(plan.config.b2) + " K=" + std::to_string(plan.config.subspaces);
}

std::string typeName(const TensorInfo& info)
{
    return info.storage.empty() ? std::string(dtypeInfo(info.dtype).name) : info.storage;
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
    uint64_t n = 2 * kNovaqAlign + kManifestBase + (config.is_null() ? 0 : config.dump().size());
    for (const TensorInspection& t : tensors)
        n += align64(t.estimatedBytes) + kManifestPerTensor;
    return n;
}

double ModelInspection::estimatedEffectiveBits() const noexcept
{
    const uint64_t p = params();
    return p ? 8.0 * double(estimatedFileBytes()) / double(p) : 0.0;
}

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
                        {"estimated_bytes", t.estimatedBytes}});
    nlohmann::json filesJson = nlohmann::json::array();
    for (const auto& f : files)
        filesJson.push_back(f.string());
    const uint64_t est = estimatedFileBytes();
    return {{"path", path.string()},
            {"format", format},
            {"architecture", architecture},
            {"runtime", runtime},
            {"files", filesJson},
            {"config", config},
            {"settings",
             {{"bits", bits},
              {"d", settings.d},
              {"b1", settings.b1},
              {"b2", settings.b2},
              {"subspaces", settings.subspaces}}},
            {"tensors", rows},
            {"totals",
             {{"tensors", tensors.size()},
              {"params", params()},
              {"quantized_params", quantizedParams()},
              {"source_bytes", sourceBytes()},
              {"estimated_file_bytes", est},
              {"estimated_effective_bits", estimatedEffectiveBits()},
              {"estimated_ratio_vs_source", est ? double(sourceBytes()) / double(est) : 0.0},
              {"estimated_ratio_vs_16bit", est ? 2.0 * double(params()) / double(est) : 0.0}}}};
}

ModelInspection inspectModel(const std::filesystem::path& path, double bits, const CodecConfig& config)
{
    const std::unique_ptr<ModelReader> reader = openModel(path);
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
    out.settings = config;
    out.bits = bits;
    PlanOptions options;
    options.config = config;
    if (const auto p = presetForBits(bits); p && p->d == config.d && p->b1 == config.b1 && p->b2 == config.b2)
        options.bits = bits; // a preset, not expert settings: the balanced allocation applies
    for (const TensorPlan& plan : planModel(*reader, options)) {
        TensorInspection t;
        t.info = reader->tensors()[plan.index];
        t.quantize = plan.quantize;
        t.config = plan.config;
        t.reason = plan.reason;
        t.plannedAs = plannedAs(plan);
        t.estimatedBytes = plan.estimatedBytes;
        out.tensors.push_back(std::move(t));
    }
    return out;
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
    std::snprintf(line, sizeof line, "settings                bits=%g d=%d b1=%d b2=%d subspaces=%d\n", m.bits,
                  m.settings.d, m.settings.b1, m.settings.b2, m.settings.subspaces);
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

double calibratedEncodeRate(const CodecConfig& config, int threads)
{
    using Key = std::tuple<int, int, int, int, int>;
    static std::mutex mutex;
    static std::map<Key, double> rates;
    const Key key{config.d, config.b1, config.b2, config.subspaces, threads};
    {
        const std::lock_guard lock(mutex);
        if (const auto it = rates.find(key); it != rates.end())
            return it->second;
    }
    constexpr int64_t rows = 256, cols = 1024;
    std::vector<float> W(static_cast<size_t>(rows * cols));
    std::mt19937_64 rng(20260101);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    for (float& x : W)
        x = gauss(rng);
    CodecParams params;
    params.config = config;
    const auto run = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        (void)encodeMatrix(W, rows, cols, params);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    double seconds = 0;
    if (threads > 0) {
        tbb::task_arena arena(threads);
        seconds = arena.execute(run);
    } else {
        seconds = run();
    }
    const double rate = double(rows * cols) / std::max(seconds, 1e-9);
    const std::lock_guard lock(mutex);
    rates.emplace(key, rate);
    return rate;
}

double estimatedSeconds(const ModelInspection& inspection, double paramsPerSecond)
{
    if (paramsPerSecond <= 0)
        return 0;
    return double(inspection.quantizedParams()) / paramsPerSecond;
}

} // namespace novaq
