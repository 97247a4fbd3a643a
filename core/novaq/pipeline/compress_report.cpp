#include "novaq/pipeline/compress_report.h"

#include <cstdio>
#include <sstream>

namespace novaq {

nlohmann::json compressReportJson(const ModelReport& report, const std::vector<RankShare>& shares)
{
    nlohmann::json j = report.toJson();
    if (!shares.empty()) {
        j["ranks"] = nlohmann::json::array();
        for (const RankShare& s : shares)
            j["ranks"].push_back({{"rank", s.rank},
                                  {"host", s.host},
                                  {"tensors", s.tensors},
                                  {"params", s.params},
                                  {"cost_share", s.cost},
                                  {"seconds", s.seconds}});
    }
    return j;
}

std::string calibrationLine(const ModelReport& report, const ShownText& shown)
{
    if (!report.settings.contains("calibration"))
        return {};
    const nlohmann::json& c = report.settings["calibration"];
    const int64_t tokens = c.value("tokens", int64_t(0)), widest = c.value("widest_input", int64_t(0));
    return "Calibration: " + std::to_string(tokens) + " tokens of " + shown(c.value("text", "")) + " (" +
           (c.value("tokens_from", "") == "option"
                ? std::string("--calibration-tokens")
                : "chosen from the layer width: 4 x the widest layer input " + std::to_string(widest) +
                      ", 32768 to 65536, at most what the text gives") +
           ")\n";
}

std::string calibrationWarning(const ModelReport& report)
{
    if (!report.settings.contains("calibration"))
        return {};
    const nlohmann::json& c = report.settings["calibration"];
    const int64_t tokens = c.value("tokens", int64_t(0)), widest = c.value("widest_input", int64_t(0));
    if (!(widest > 0 && tokens < widest))
        return {};
    return std::to_string(tokens) + " calibration tokens are fewer than the widest layer input (" +
           std::to_string(widest) +
           "): the refit kept the original weights in the directions the text never reached, so calibration helped "
           "less than it can; give a longer text or --calibration-tokens " +
           std::to_string(widest * 4) + " or more";
}

std::string formatRankShares(const std::vector<RankShare>& shares, const ShownText& shown)
{
    std::string text = std::to_string(shares.size()) + " ranks:";
    char line[512];
    for (const RankShare& s : shares) {
        std::snprintf(line, sizeof line, "\n  rank %d (%s): %zu tensors, %.1f%% of the estimated work, %.1f s", s.rank,
                      shown(s.host).c_str(), s.tensors, 100.0 * s.cost, s.seconds);
        text += line;
    }
    return text;
}

std::string formatCompressReport(const ModelReport& report, const std::vector<RankShare>& shares,
                                 const ShownText& shown)
{
    std::string text = formatReportTable(report, true);
    if (const std::string line = calibrationLine(report, shown); !line.empty())
        text += "\n" + line;
    if (!shares.empty())
        text += "\n" + formatRankShares(shares, shown);
    text += "\nWrote " + report.output.string() + '\n';
    return text;
}

std::string fitMemoryNote(const MemoryTarget& target, const ShownText& shown)
{
    const RunMemory& m = target.memory;
    return "Fit to memory: " + shown(m.text) + "; the plan runs in about " + humanBytes(m.total()) + " (weights " +
           humanBytes(m.weights) + ", KV cache " + humanBytes(m.kvCache) + " at " + std::to_string(m.context) +
           " tokens, buffers " + humanBytes(m.scratch) + "), a file of about " +
           humanBytes(target.fit.inspection.estimatedFileBytes()) + "\n";
}

std::string formatStats(const std::filesystem::path& file, int major, int minor, const ModelReport& report,
                        const ShownText& shown)
{
    std::ostringstream out;
    out << shown(file.string()) << " (.novaq version " << major << "." << minor << "), compressed from "
        << (report.source.empty() ? "an unnamed source" : report.source) << "\n\n"
        << formatReportTable(report, false);
    return out.str();
}

} // namespace novaq
