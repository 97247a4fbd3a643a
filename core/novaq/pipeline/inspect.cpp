#include "novaq/pipeline/inspect.h"

#include "novaq/container/novaq_file.h"
#include "novaq/pipeline/planner.h"
#include "novaq/pipeline/report.h"

#include <cstdio>
#include <sstream>

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
    out.files = reader->files();
    const nlohmann::json& meta = reader->metadata();
    out.config = meta.contains("config") ? meta["config"] : nlohmann::json();
    out.settings = config;
    out.bits = bits;
    PlanOptions options;
    options.config = config;
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
        << " tensors in " << m.files.size() << " file" << (m.files.size() == 1 ? "" : "s") << "\n\n";
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

} // namespace novaq
