#pragma once
// The figures of a compressed model: what `novaq local` prints at the end, what
// `novaq stats` reads back from a file, and what the GUI's results page shows.

#include "novaq/io/units.h" // humanBytes, withThousands: used with every report
#include "novaq/pipeline/job.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novaq {

// How the compressed model compares with its original on a sample text (the app's "Check
// quality": `novaq eval MODEL --against ORIGINAL`'s figures). Not stored in the .novaq file.
struct QualityCheck {
    std::string text;              // the sample text: a file name or what the app calls it
    int64_t tokens = 0;            // positions scored
    int ctx = 0;                   // window length
    double perplexity = 0;         // the compressed model's (lower is better)
    double originalPerplexity = 0; // the original's on the same text
    double meanKl = 0;             // KL(original || compressed), nats per token
    double top1 = 0;               // fraction of positions where both pick the same next token

    nlohmann::json toJson() const;
};

// Where a run spent its time, in seconds of wall clock (not stored in the file).
struct PhaseSeconds {
    double teacher = 0;    // calibration: forwards of the original blocks
    double statistics = 0; // calibration: forwards of the compressed blocks, H and C
    double encoding = 0;   // codebooks and codes
    double targets = 0;    // teacher targets W* (teacher_targets.h)
    double refit = 0;      // least-squares refits for the layer outputs (refine.h)
    double total() const noexcept { return teacher + statistics + encoding + targets + refit; }
};

struct ModelReport {
    std::filesystem::path output; // the .novaq file
    std::string source;           // what the user named
    std::string sourceFormat;     // "safetensors", ...
    std::string architecture;
    nlohmann::json settings; // bits, d, b1, b2, subspaces, seed, ...
    std::vector<TensorResult> tensors;
    uint64_t sourceBytes = 0;            // tensor bytes in the source files
    uint64_t fileBytes = 0;              // size of the .novaq file, everything included
    double seconds = 0;                  // wall time of the run (0 when read back from a file)
    std::optional<QualityCheck> quality; // set once a quality check ran; "quality" in toJson()
    // Where the time went (compressModel; not read back from a file).
    PhaseSeconds phases;                   // the whole run
    std::vector<PhaseSeconds> blockPhases; // calibrated runs: the embedding, each block, the output

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

// Running totals over the tensors of a run finished so far, in the order they finish: what
// the GUI's live chart draws after each tensor. Payload bytes only (the header, manifest and
// alignment of the file come at the end), so `ratio` and `effectiveBits` approach, but are
// not, the whole-file figures of ModelReport.
struct RunningTotals {
    size_t tensors = 0;          // tensors added
    size_t quantizedTensors = 0; // of which compressed
    uint64_t params = 0;         // weights of the tensors added
    uint64_t bytesIn = 0;        // their bytes in the source
    uint64_t bytesOut = 0;       // their payload bytes in the .novaq file

    void add(const TensorResult& tensor) noexcept;
    double ratio() const noexcept;         // bytesIn / bytesOut; 0 while bytesOut is 0
    double effectiveBits() const noexcept; // 8 * bytesOut / params; 0 while params is 0
};

// The relative errors of the quantized tensors in `bins` equal-width bins from the smallest to
// the largest error (a value on an inner edge counts in the bin above it; the largest in the
// last bin). Kept tensors and non-finite errors are left out. When every error is the same,
// all of them are in the first bin and every edge is that error.
struct Histogram {
    std::vector<double> edges; // bins + 1, ascending; empty when there is no error to count
    std::vector<int> counts;   // bins (clamped to 1..kMaxHistogramBins), all 0 when there is no error to count
    int total() const noexcept;
};
inline constexpr int kMaxHistogramBins = 1024;
Histogram errorHistogram(std::span<const TensorResult> tensors, int bins);

// sourceBytes / outputBytes, 0 when outputBytes is 0 (as ModelReport::ratioVsSource).
double compressionRatio(uint64_t sourceBytes, uint64_t outputBytes) noexcept;

// Seconds left of a run `fractionDone` (0..1) done after `elapsedSeconds`, assuming the rest
// goes at the same pace; -1 (unknown) until 2 % and half a second have passed.
double estimatedSecondsLeft(double elapsedSeconds, double fractionDone) noexcept;

} // namespace novaq
