#pragma once
// What `novaq local` (and the download commands) and `novaq stats` print around the table of
// a ModelReport (report.h formatReportTable): the calibration line and its warning, the
// shares of a cluster run, the fit-to-memory note; as JSON and as text. In the text, texts
// from files and hosts go through `shown` (io/shown_text.h); a ModelReport given to a text
// formatter is, as formatReportTable takes it, already escaped by the caller.

#include "novaq/io/shown_text.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/fit_memory.h"
#include "novaq/pipeline/report.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace novaq {

// `novaq local --json`: report.toJson(), with "ranks" ([{rank, host, tensors, params,
// cost_share, seconds}]) when several ranks shared the run.
nlohmann::json compressReportJson(const ModelReport& report, const std::vector<RankShare>& shares);

// "Calibration: 32768 tokens of kjv_calibration.txt (chosen from the layer width: ...)\n", or
// empty when the run was not calibrated.
std::string calibrationLine(const ModelReport& report, const ShownText& shown);
// Why the calibration helped less than it can (fewer tokens than the widest layer input),
// for a warning; empty when there is nothing to say.
std::string calibrationWarning(const ModelReport& report);

// "2 ranks:\n  rank 0 (node1): 12 tensors, 48.0% of the estimated work, 3.1 s..." (no final
// newline).
std::string formatRankShares(const std::vector<RankShare>& shares, const ShownText& shown);

// `novaq local`'s text: the table with times, the calibration line, the ranks, "Wrote FILE".
std::string formatCompressReport(const ModelReport& report, const std::vector<RankShare>& shares,
                                 const ShownText& shown);

// "Fit to memory: --fit-memory 8GB; the plan runs in about ... a file of about ...\n".
std::string fitMemoryNote(const MemoryTarget& target, const ShownText& shown);

// `novaq stats FILE`: "FILE (.novaq version 1.2), compressed from SOURCE", then the table
// without times.
std::string formatStats(const std::filesystem::path& file, int major, int minor, const ModelReport& report,
                        const ShownText& shown);

} // namespace novaq
