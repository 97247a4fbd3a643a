#pragma once
// ValidateReport (validate.h) as `novaq validate` gives it: JSON and text. In the text, the
// file name, tensor names and problems go through `shown` (io/shown_text.h).

#include "novaq/io/shown_text.h"
#include "novaq/pipeline/validate.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace novaq {

// {file, ok, version: [major, minor], tensor_count, tensors: [{name, ok, problem,
// recorded_rel_error, recomputed_rel_error (null without a source)}], problems}.
nlohmann::json validateReportJson(const std::filesystem::path& file, const ValidateReport& report);

// "3 of 40 tensors bad, 1 file-level problem"; empty when nothing is wrong.
std::string validateProblemsText(const ValidateReport& report);

// The file and its version, a line per tensor (ok with its error, or FAIL with the problem),
// the file-level problems, then "OK: ..." or "FAILED: ...". `againstSource`: the errors were
// recomputed from the source model.
std::string formatValidateReport(const std::filesystem::path& file, const ValidateReport& report, bool againstSource,
                                 const ShownText& shown);

} // namespace novaq
