#include "novaq/pipeline/validate_report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace novaq {

nlohmann::json validateReportJson(const std::filesystem::path& file, const ValidateReport& report)
{
    nlohmann::json tensors = nlohmann::json::array();
    for (const TensorCheck& t : report.tensors) {
        nlohmann::json row = {
            {"name", t.name}, {"ok", t.ok}, {"problem", t.problem}, {"recorded_rel_error", t.recordedRelError}};
        row["recomputed_rel_error"] = t.recomputedRelError ? nlohmann::json(*t.recomputedRelError) : nlohmann::json();
        tensors.push_back(std::move(row));
    }
    return {{"file", file.string()},
            {"ok", report.ok},
            {"version", {report.major, report.minor}},
            {"tensor_count", report.tensorCount},
            {"tensors", std::move(tensors)},
            {"problems", report.problems}};
}

std::string validateProblemsText(const ValidateReport& report)
{
    const size_t bad =
        size_t(std::count_if(report.tensors.begin(), report.tensors.end(), [](const TensorCheck& t) { return !t.ok; }));
    std::string problems;
    if (bad > 0)
        problems = std::to_string(bad) + " of " + std::to_string(report.tensorCount) + " tensors bad";
    if (!report.problems.empty())
        problems += (problems.empty() ? "" : ", ") + std::to_string(report.problems.size()) + " file-level problem" +
                    (report.problems.size() == 1 ? "" : "s");
    return problems;
}

std::string formatValidateReport(const std::filesystem::path& file, const ValidateReport& report, bool againstSource,
                                 const ShownText& shown)
{
    size_t width = 0;
    for (const TensorCheck& t : report.tensors)
        width = std::max(width, shown(t.name).size());
    std::ostringstream out;
    out << shown(file.string());
    if (report.major > 0)
        out << ": .novaq version " << report.major << "." << report.minor << ", " << report.tensorCount << " tensors";
    out << '\n';
    for (const TensorCheck& t : report.tensors) {
        char figures[128] = "";
        if (t.recomputedRelError)
            std::snprintf(figures, sizeof figures, "  rel.err recorded %.6g, recomputed %.6g", t.recordedRelError,
                          *t.recomputedRelError);
        else
            std::snprintf(figures, sizeof figures, "  rel.err %.6g", t.recordedRelError);
        const std::string name = shown(t.name);
        const std::string pad(width - name.size(), ' ');
        out << (t.ok ? "  ok    " : "  FAIL  ") << name << (t.ok ? pad + figures : ": " + shown(t.problem)) << '\n';
    }
    for (const std::string& p : report.problems)
        out << "  FAIL  " << shown(p) << '\n';
    if (report.ok)
        out << "OK: " << report.tensorCount << " tensors, all checksums and decodes good"
            << (againstSource ? ", errors match the source" : "") << '\n';
    else
        out << "FAILED: " << validateProblemsText(report) << " (listed above)\n";
    return out.str();
}

} // namespace novaq
