#pragma once
// Which tensors are quantized, with which configuration, and how the rest is kept.

#include "novaq/codec/codec_config.h"
#include "novaq/codec/codec_spec.h"
#include "novaq/formats/model_reader.h"

#include <vector>

namespace novaq {

struct TensorPlan {
    size_t index = 0; // into reader.tensors()
    bool quantize = false;
    CodecConfig config;        // when quantize
    bool colScale = false;     // estimate only: the encoder decides from the data
    DType keepAs = DType::F16; // when kept
    // Kept as the source stores it, byte for byte: a GGUF block type (TensorInfo::storage) that
    // is smaller than keepAs, or than quantizing it would be. keepAs is then not used.
    bool keepSource = false;
    uint64_t estimatedBytes = 0;
    std::string reason; // "quantized", "1-D (norm or bias)", "too small to gain", ...
};

// What a tensor does in the model, from its name (Hugging Face, GGUF, Meta and GPT-2 names).
enum class TensorRole { Embedding, Output, FirstBlock, Other };
TensorRole tensorRole(const std::string& name);

// Where bits go across tensors. Measured on kjv-llama-7m (novaq eval, KL on held-out text,
// each group of matrices compressed alone): the output layer and the first block cost
// more KL than all other blocks together, and the embedding about as much as one block;
// llama.cpp's k-quant mixes keep those tensors at higher precision for the same reason.
// Balanced gives them a higher preset; Uniform gives every tensor the chosen one.
enum class BitAllocation { Balanced, Uniform };
// The preset a tensor of `role` gets at `--bits bits` with Balanced allocation (the role table
// in planner.cpp names rows of kBitsPresets and is checked against it when compiled); `bits`
// itself when it is not a preset's own bits.
double presetBitsFor(double bits, TensorRole role) noexcept;

struct PlanOptions {
    // The --bits preset or the expert settings. Balanced allocation applies to a preset only:
    // expert settings are taken as given for every tensor, even when they equal a preset's
    // (codec_spec.h; compressModel and inspectModel both plan through here, so the estimate is
    // what the file holds).
    CodecSpec codec;
    BitAllocation allocation = BitAllocation::Balanced;
    int64_t minParams = 4096;            // smaller tensors are kept
    double maxOverheadFraction = 0.25;   // with K > 1, codebooks may cost at most this share of the code bits
    double maxOverheadOneSubspace = 1.0; // with one subspace (small matrices), at most this share
};

// Never plans a tensor larger than its 16-bit form, nor larger than its source encoding when
// that is a GGUF block type (which it then keeps as it is).
TensorPlan planTensor(const TensorInfo& info, const PlanOptions& options);
std::vector<TensorPlan> planModel(const ModelReader& reader, const PlanOptions& options);

// --- Make it fit: per-tensor presets chosen for a size budget (--target-size / --target-bits).

// Measured mean relative error ||W - What||^2 / ||W||^2 of the codec at each preset of
// bitsPresets() (the Gaussian limit 2^(-2R) times a factor of 1.2 to 1.6); 0 for other bits.
double presetRelativeError(double presetBits) noexcept;
// How much one parameter's error counts by role, from the role table above (see planner.cpp).
double roleWeight(TensorRole role) noexcept;

// One way to store one tensor when fitting a target: the plan at one preset (or kept), its
// file cost and its predicted error (role-weighted, times the
// parameter count). A tensor's options are sorted by cost, and each costs more and predicts
// less error than the one before it (the others are left out).
struct FitOption {
    TensorPlan plan;
    double presetBits = 0; // 0 when kept
    uint64_t cost = 0;     // the payload, 64-byte aligned, plus `record`
    uint64_t record = 0;   // its manifest record (name, shape, codec, section, stats), at most
    double error = 0;
};
// `sensitivity` (pipeline/sensitivity.h, per tensor, measured with calibration text): a
// tensor's predicted error is its sensitivity times the preset's relative error; without it,
// the role weight times the parameter count times that error.
std::vector<std::vector<FitOption>> fitOptions(const ModelReader& reader, int subspaces,
                                               const std::vector<double>* sensitivity = nullptr);

// Greedy allocation: every tensor starts at its cheapest option; then, while the budget
// allows, the upgrade with the largest predicted error reduction per byte is made (one that no
// longer fits is skipped, and a cheaper one may still fit). Tensors with `fixed[i] >= 0` keep
// that option and are not charged (their bytes are already counted outside `budget`).
// Deterministic: ties go to the lower tensor index, then the cheaper option.
std::vector<size_t> allocateBudget(const std::vector<std::vector<FitOption>>& options, uint64_t budget,
                                   const std::vector<int>& fixed = {});

// Calibration tokens when the user gives none, from the widest input of the model's linear
// layers: four times that width (so that H = X^T X / n is estimated from several times as
// many tokens as it has directions), at least 32,768 and at most 65,536 (memory: the teacher's
// inputs of one block are kept, tokens x the block's input widths), in whole windows of 256.
int64_t defaultCalibrationTokens(int64_t widestInput) noexcept;

} // namespace novaq
