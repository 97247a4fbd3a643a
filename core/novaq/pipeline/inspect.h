#pragma once
// What a model holds before anyone compresses it, and what `novaq local` would do with each
// tensor at the chosen settings: `novaq inspect`, and the data the GUI shows before a run.

#include "novaq/codec/codec_config.h"
#include "novaq/formats/model_reader.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace novaq {

struct TensorInspection {
    TensorInfo info;
    bool quantize = false;
    CodecConfig config;          // when quantized (subspaces as the planner chose)
    std::string reason;          // "quantized", "1-D (norm or bias)", ...
    std::string plannedAs;       // "novaq d=8 8+4 K=4" or "F16"
    uint64_t estimatedBytes = 0; // payload in the .novaq file (an upper bound for quantized ones)
};

struct ModelInspection {
    std::filesystem::path path;
    std::string format;
    std::string architecture;
    // How the runtime runs it (eval, generate, calibration): the architecture table's row and
    // the features used (runtime/llama.h describeConfig), or {"runs": false, "reason": ...}.
    nlohmann::json runtime;
    std::string runtimeText; // one line of words
    std::vector<std::filesystem::path> files;
    nlohmann::json config; // config.json or null
    CodecConfig settings;  // the configuration the estimate is for
    double bits = 0;       // the --bits preset (or the expert code bits)
    std::vector<TensorInspection> tensors;

    uint64_t params() const noexcept;
    uint64_t sourceBytes() const noexcept;
    uint64_t quantizedParams() const noexcept;
    // The whole .novaq file: payloads, alignment, header, trailer and a manifest estimate.
    uint64_t estimatedFileBytes() const noexcept;
    double estimatedEffectiveBits() const noexcept;

    nlohmann::json toJson() const;
};

ModelInspection inspectModel(const std::filesystem::path& path, double bits, const CodecConfig& config);
std::string formatInspection(const ModelInspection& inspection);

// Working memory compressModel needs for one quantized rows x cols tensor whose serialized
// payload is `payloadBytes` (the formula is in inspect.cpp, derived from compress.cpp and
// encoder.cpp). The source model itself is memory-mapped and not counted.
uint64_t tensorWorkingBytes(int64_t rows, int64_t cols, const CodecConfig& config, uint64_t payloadBytes);

// The estimated peak working memory of compressing the model at these settings: the
// largest tensorWorkingBytes over the quantized tensors (tensors are compressed one at a time).
uint64_t estimatedPeakBytes(const ModelInspection& inspection);

// Encoding throughput of this machine, in parameters per second, measured once per (config,
// threads) in the process by encoding a 256 x 1024 Gaussian matrix with encodeMatrix; later
// calls return the cached rate. threads 0: all cores. Takes a fraction of a second.
double calibratedEncodeRate(const CodecConfig& config, int threads);

// The estimated time of compressing the quantized tensors at `paramsPerSecond` (kept tensors
// only convert and cost little next to them).
double estimatedSeconds(const ModelInspection& inspection, double paramsPerSecond);

} // namespace novaq
