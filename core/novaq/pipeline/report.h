#pragma once
// The figures of a compressed model: what `novaq local` prints at the end, what
// `novaq stats` reads back from a file, and what the GUI's results page shows.

#include "novaq/pipeline/job.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace novaq {

struct ModelReport {
    std::filesystem::path output; // the .novaq file
    std::string source;           // what the user named
    std::string sourceFormat;     // "safetensors", ...
    std::string architecture;
    nlohmann::json settings; // bits, d, b1, b2, subspaces, seed, ...
    std::vector<TensorResult> tensors;
    uint64_t sourceBytes = 0; // tensor bytes in the source files
    uint64_t fileBytes = 0;   // size of the .novaq file, everything included
    double seconds = 0;       // wall time of the run (0 when read back from a file)

    uint64_t params() const noexcept;
    uint64_t quantizedParams() const noexcept;
    double ratioVsSource() const noexcept; // sourceBytes / fileBytes
    double ratioVs16Bit() const noexcept;  // 2 * params / fileBytes
    double effectiveBits() const noexcept; // 8 * fileBytes / params (all overhead included)
    double meanRelError() const noexcept;  // over quantized tensors, weighted by parameters
    double worstRelError() const noexcept;
    std::string worstTensor() const;

    nlohmann::json toJson() const;
};

// The report stored in a .novaq manifest (times are not stored: see compress.h).
ModelReport reportFromManifest(const nlohmann::json& manifest, const std::filesystem::path& file, uint64_t fileBytes);

// A fixed-width text table: one row per tensor, then totals. `maxRows` > 0 elides the middle.
std::string formatReportTable(const ModelReport& report, bool withTimes, size_t maxRows = 0);

std::string humanBytes(uint64_t bytes);
std::string withThousands(uint64_t value); // 6819072 -> "6,819,072"

} // namespace novaq
