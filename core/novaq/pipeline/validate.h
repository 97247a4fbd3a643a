#pragma once

#include "novaq/pipeline/job.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace novaq {

struct TensorCheck {
    std::string name;
    bool ok = true;
    std::string problem; // empty when ok
    double recordedRelError = 0;
    std::optional<double> recomputedRelError; // with --against
};

struct ValidateReport {
    bool ok = true;
    uint16_t major = 0, minor = 0;
    size_t tensorCount = 0;
    std::vector<TensorCheck> tensors;
    std::vector<std::string> problems; // file-level problems
};

// Structure, checksums, decodes every tensor (finite values); with `against`, recomputes
// each tensor's relative error from the source and compares it with the recorded one.
ValidateReport validateNovaq(const std::filesystem::path& file, const std::optional<std::filesystem::path>& against,
                             ProgressSink* sink, const CancelToken* cancel);

} // namespace novaq
