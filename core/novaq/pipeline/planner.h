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
    uint64_t estimatedBytes = 0;
    std::string reason; // "quantized", "1-D (norm or bias)", "too small to gain", ...
};

struct PlanOptions {
    CodecConfig config;                  // from --bits / expert settings
    int64_t minParams = 4096;            // smaller tensors are kept
    double maxOverheadFraction = 0.25;   // with K > 1, codebooks may cost at most this share of the code bits
    double maxOverheadOneSubspace = 1.0; // with one subspace (small matrices), at most this share
};

// Never plans a tensor larger than its 16-bit form.
TensorPlan planTensor(const TensorInfo& info, const PlanOptions& options);
std::vector<TensorPlan> planModel(const ModelReader& reader, const PlanOptions& options);

} // namespace novaq
