#pragma once
// Which tensors are quantized, with which configuration, and how the rest is kept.

#include "novaq/codec/codec_config.h"
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
// The preset a tensor of `role` gets at `--bits bits` with Balanced allocation.
double presetBitsFor(double bits, TensorRole role) noexcept;

struct PlanOptions {
    CodecConfig config; // from --bits / expert settings
    double bits = 0;    // the --bits preset (0: expert settings, no reallocation)
    BitAllocation allocation = BitAllocation::Balanced;
    int64_t minParams = 4096;            // smaller tensors are kept
    double maxOverheadFraction = 0.25;   // with K > 1, codebooks may cost at most this share of the code bits
    double maxOverheadOneSubspace = 1.0; // with one subspace (small matrices), at most this share
};

// Never plans a tensor larger than its 16-bit form, nor larger than its source encoding when
// that is a GGUF block type (which it then keeps as it is).
TensorPlan planTensor(const TensorInfo& info, const PlanOptions& options);
std::vector<TensorPlan> planModel(const ModelReader& reader, const PlanOptions& options);

} // namespace novaq
