#pragma once
// Measured sensitivity of a model's output to each of its matrices (issue 18: bit allocation
// by measured sensitivity instead of a fixed role table).
//
// For each matrix the runtime multiplies (the embedding, each block's q k v o gate up down,
// the output layer), Gaussian noise of a known relative size e (each row's noise scaled to
// that row's RMS, so ||dW||^2 / ||W||^2 = e in expectation) is added to that matrix alone, the
// model runs over a few windows of the calibration text, and the mean KL divergence from the
// unperturbed model's next-token distributions is divided by e. To first order a codec whose
// relative error on that matrix is r adds r times this figure to the KL: a `--target-size`
// fit then spends its bytes where they remove the most predicted KL.
//
// Cost: one forward of the unperturbed model, then per matrix one forward from that matrix's
// block on (the hidden states entering each block are kept), over `tokens` tokens.

#include "novaq/formats/model_reader.h"
#include "novaq/io/cancel.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace novaq {

class Tokenizer;

struct SensitivityOptions {
    std::filesystem::path text; // the calibration text
    int ctx = 256;              // tokens per window
    int64_t tokens = 1024;      // at most, in whole windows (the first ones of the text)
    double relativeError = 0.01;
    uint64_t seed = 20260101;
};

struct Sensitivity {
    // Per tensor of reader.tensors(): d(KL) / d(relative error), nats per token; 0 for a
    // tensor that is not a matrix the runtime multiplies (norms, biases).
    std::vector<double> perTensor;
    double baseNll = 0; // mean NLL of the unperturbed model on the windows (a sanity figure)
    int64_t tokens = 0; // tokens scored
    double seconds = 0;
};

// Throws Error(Unsupported) for a model the runtime cannot run, Error(InvalidArgument) when
// the text is shorter than one window.
Sensitivity measureSensitivity(const ModelReader& reader, const Tokenizer& tokenizer, const SensitivityOptions& options,
                               const CancelToken* cancel = nullptr);

// What measuring holds: the whole model as F32 (loadLlama), the reference log-probabilities
// of the tokens and the hidden states entering each block.
uint64_t sensitivityMemoryBytes(const ModelReader& reader, const SensitivityOptions& options = {});
// Above this, sensitivityFor measures nothing and the fit keeps the role table: the
// measurement holds the whole model, where compression holds one tensor (one block with
// calibration). A measurement a block at a time would lift this; it is not written yet.
inline constexpr uint64_t kSensitivityMemoryLimit = uint64_t(2) << 30;

// The sensitivity a `--target-size` / `--fit-memory` fit with calibration text uses, measured
// once per (model, text) in the process with the default options (a fit is planned several
// times: the memory target's bisection, the app's preview and then its run). The model's
// tokenizer is found as calibration finds it. Null when sensitivityMemoryBytes is above
// kSensitivityMemoryLimit.
std::shared_ptr<const Sensitivity> sensitivityFor(const ModelReader& reader, const std::filesystem::path& modelPath,
                                                  const std::filesystem::path& text,
                                                  const CancelToken* cancel = nullptr);

} // namespace novaq
