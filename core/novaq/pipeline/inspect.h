#pragma once
// What a model holds before anyone compresses it, and what `novaq local` would do with each
// tensor at the chosen settings: `novaq inspect`, and the data the GUI shows before a run.

#include "novaq/codec/codec_config.h"
#include "novaq/codec/codec_spec.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/cancel.h"
#include "novaq/pipeline/planner.h"

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
    std::string plannedAs;       // "novaq d=8 8+4 K=4", "F16", or a GGUF block type kept as it is ("Q4_K")
    uint64_t estimatedBytes = 0; // payload in the .novaq file (an upper bound for quantized ones)
    bool keepSource = false;     // kept in its source encoding, byte for byte
};

// Where the bytes of an estimate go. Effective bits = 8 * file bytes / parameters; what they
// exceed the preset's nominal bits by is the sum of three parts, in bits per weight of the
// whole model:
//   keptExtraBits       tensors kept as they are (16-bit, or the source's encoding) cost
//                       keptBytes instead of the nominal bits for their parameters;
//   quantizedExtraBits  codebooks, row and column scales, and the higher presets the balanced
//                       allocation gives the embedding, the output and the first block;
//   fileExtraBits       header, manifest (the source's metadata included) and alignment.
struct EstimateBreakdown {
    uint64_t quantizedBytes = 0, keptBytes = 0, overheadBytes = 0;
    uint64_t quantizedParams = 0, keptParams = 0;
    uint64_t keptAt16Params = 0, keptSourceParams = 0; // kept at 16 bits (or more) / in the source's encoding
    // What the tensors kept at 16 bits are: the embedding or output layer, norms and biases
    // (1-D), other small matrices.
    bool keptEmbedding = false, keptNorms = false, keptSmall = false;
    bool moreBitsForSomeRoles = false; // the balanced allocation raised the embedding, output or first block
    double nominalBits = 0, effectiveBits = 0;
    double keptExtraBits = 0, quantizedExtraBits = 0, fileExtraBits = 0;
};

// What running a planned model takes (--fit-memory; pipeline/fit_memory.h): the runtime's
// weights as held, its KV cache at `context` positions and its working buffers. limit 0: none.
struct RunMemory {
    uint64_t limit = 0;  // the memory the plan was fitted to
    std::string text;    // as the user gave it: "--fit-memory 8GB"
    int64_t context = 0; // positions the cache holds
    uint64_t weights = 0, kvCache = 0, scratch = 0;
    uint64_t total() const noexcept { return weights + kvCache + scratch; }
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
    CodecSpec codec;       // the settings the estimate is for (its bits(): the preset's, or the expert code bits)
    std::vector<TensorInspection> tensors;

    uint64_t params() const noexcept;
    uint64_t sourceBytes() const noexcept;
    uint64_t quantizedParams() const noexcept;
    // The whole .novaq file: payloads, alignment, header, trailer and a manifest estimate.
    uint64_t estimatedFileBytes() const noexcept;
    double estimatedEffectiveBits() const noexcept;
    uint64_t metadataBytes = 0; // the source's metadata the manifest carries (JSON text)

    // A plan fitted to a size (--target-size / --target-bits); targetBytes 0: none.
    uint64_t targetBytes = 0;
    std::string targetText;                          // as the user gave it: "--target-size 2.2MB"
    uint64_t targetMinBytes = 0, targetMaxBytes = 0; // the reachable range of the estimate
    double predictedError = 0;                       // role-weighted mean relative error of the plan
    // Fitted with calibration text: the tokens the sensitivity was measured on (0: the role
    // table weighed the fit), the seconds it took, and the KL divergence the plan predicts
    // (sum over tensors of sensitivity times the preset's relative error: a first-order
    // prediction measured without calibration's refit, so an upper estimate).
    int64_t sensitivityTokens = 0;
    double sensitivitySeconds = 0;
    double predictedKl = 0;
    std::string allocationNote; // why the role table weighed a fit given calibration text
    // With a target: header, manifest and trailer estimated from the tensor names rather than
    // the generous per-tensor constant, so that the file can fill the target (0: not used).
    uint64_t fixedBytes = 0;
    // With --fit-memory: the memory the plan runs in (limit 0: none).
    RunMemory runMemory;

    // Bits per weight of the source as stored (8 * sourceBytes / params): 16 for an F16 model,
    // about 4.9 for a llama.cpp Q4_K_M file.
    double sourceBitsPerWeight() const noexcept;
    // The source is stored below 16 bits per weight (a quantized GGUF, for instance).
    bool sourceAlreadyCompressed() const noexcept;
    // The estimated file is not smaller than the source's tensors: compressing gains nothing.
    bool notSmallerThanSource() const noexcept;
    EstimateBreakdown breakdown() const noexcept;
    // Why the effective bits exceed the nominal ones, in one short sentence of words, e.g.
    // "tensors kept at 16 bits add 0.9 bits; codebooks and scales add 0.3"; empty when they
    // add less than 0.05 bits.
    std::string extraBitsText() const;
    // "this model is already 4.9 bits per weight" style line for an already compressed source,
    // with what the estimate does about it; empty for a 16/32-bit source.
    std::string sourceText() const;

    nlohmann::json toJson() const;
};

// The estimate of one row of bitsPresets() on a model.
struct PresetEstimate {
    BitsPreset preset;
    ModelInspection inspection; // the plan: every tensor, totals
    uint64_t fileBytes = 0;     // inspection.estimatedFileBytes()
    double effectiveBits = 0;   // everything counted
    EstimateBreakdown breakdown;
    bool notSmallerThanSource = false;
    // Another preset with more bits whose file is no larger (index into the result), or -1: this
    // one gains nothing on this model.
    int dominatedBy = -1;
    size_t rank = 0;   // place in the displayed order: the useful presets by size, smallest first, then the others
    std::string title; // words by what it produces: "smallest", ..., "best quality"; "no gain here" when dominated
    std::string note;  // why it gains nothing, or why its effective bits exceed the nominal ones
};

// Every preset of bitsPresets() (in that order) on this model: expected bytes, effective bits,
// breakdown, rank and words. The planner is analytic: this reads no tensor data.
// `vectorLength` > 0 overrides the presets' vector length (the GUI's Advanced setting).
std::vector<PresetEstimate> estimatePresets(const ModelReader& reader, const std::filesystem::path& path, int subspaces,
                                            int vectorLength = 0);
std::vector<PresetEstimate> estimatePresets(const std::filesystem::path& path, int subspaces, int vectorLength = 0);
// Indices into `estimates` in display order (by rank).
std::vector<size_t> displayOrder(const std::vector<PresetEstimate>& estimates);

// The plan compressModel makes at `codec` (planModel with the same PlanOptions), so the estimate is
// of the file `novaq local` writes at those settings.
ModelInspection inspectModel(const std::filesystem::path& path, const CodecSpec& codec);
ModelInspection inspectModel(const ModelReader& reader, const std::filesystem::path& path, const CodecSpec& codec);
std::string formatInspection(const ModelInspection& inspection);
// One sentence for a run whose output would not be smaller than its source (what it would be,
// why, what to do), or empty. `novaq local` prints it before it starts.
std::string notSmallerWarning(const ModelInspection& inspection);

// Per-tensor presets that fit the estimated file within 2% under a target, with the lowest
// predicted error (planner.h: fitOptions, allocateBudget). The target is bytes, or effective
// bits per weight (everything counted, as `novaq stats` reports) when targetBits > 0.
// `what` names the option in messages ("--target-size 2.2MB"). A target outside the reachable
// range throws Error(InvalidArgument) naming the range.
struct TargetFit {
    uint64_t targetBytes = 0;
    uint64_t fixedBytes = 0; // header, manifest and trailer: everything but the tensor payloads
    uint64_t minBytes = 0, maxBytes = 0;
    std::vector<std::vector<FitOption>> options; // per tensor
    std::vector<size_t> choice;                  // per tensor, into options
    std::vector<TensorPlan> plans;               // per tensor, the chosen plans
    ModelInspection inspection;                  // the plan as `novaq inspect` shows it
};
// `extraBytes`: what else the file will hold (attached tokenizer files).
// targetRange: the options, fixed bytes and reachable range only (no choice yet).
// `sensitivity`: per tensor, as fitOptions takes it (null: the role table).
// `calibration`: a calibration text (empty: none); with one, the fit weighs each tensor by the
// model's measured sensitivity to it (pipeline/sensitivity.h, sensitivityFor) instead of the
// role table, so `inspect` and `local` given the same text plan the same file.
TargetFit targetRange(const ModelReader& reader, const std::filesystem::path& path, int subspaces,
                      uint64_t extraBytes = 0, const std::vector<double>* sensitivity = nullptr);
TargetFit fitToTarget(const ModelReader& reader, const std::filesystem::path& path, uint64_t targetBytes,
                      double targetBits, int subspaces, const std::string& what, uint64_t extraBytes = 0,
                      const std::filesystem::path& calibration = {}, const CancelToken* cancel = nullptr);
TargetFit fitToTarget(const std::filesystem::path& path, uint64_t targetBytes, double targetBits, int subspaces,
                      const std::string& what, const std::filesystem::path& calibration = {});

// Working memory compressModel needs for one quantized rows x cols tensor whose serialized
// payload is `payloadBytes` (the formula is in inspect.cpp, derived from compress_steps.cpp and
// encoder.cpp). The source model itself is memory-mapped and not counted.
uint64_t tensorWorkingBytes(int64_t rows, int64_t cols, const CodecConfig& config, uint64_t payloadBytes);

// The estimated peak working memory of compressing the model at these settings: the
// largest tensorWorkingBytes over the quantized tensors (tensors are compressed one at a time).
uint64_t estimatedPeakBytes(const ModelInspection& inspection);

// Encoding throughput of this machine, in parameters per second, measured once per (config,
// threads) in the process by encoding a 256 x 1024 Gaussian matrix with encodeMatrix; later
// calls return the cached rate. threads 0: all cores. Takes a fraction of a second.
double calibratedEncodeRate(const CodecConfig& config, int threads);

// The encoder's time on this machine as two parts, measured once per (config, threads) by
// encoding 1024 x 1024 and 2048 x 1024 Gaussian matrices (the best of two each): a tensor
// costs the codebook training, which samples at most CodecParams::trainVectors vectors per
// subspace and so stops growing with the tensor, plus a time per weight. A single small probe
// (calibratedEncodeRate) counts the training as if it grew with the tensor, which made the
// estimate of a 1B-class model 50x too long.
struct EncodeTimes {
    double trainSeconds = 0;     // per tensor with at least trainVectors vectors per subspace
    double secondsPerWeight = 0; // search and refit, per weight
    double secondsFor(int64_t rows, int64_t cols, const CodecConfig& config) const;
};
EncodeTimes measureEncodeTimes(const CodecConfig& config, int threads);

// The estimated time of compressing the quantized tensors at `paramsPerSecond` (kept tensors
// only convert and cost little next to them).
double estimatedSeconds(const ModelInspection& inspection, double paramsPerSecond);

} // namespace novaq
