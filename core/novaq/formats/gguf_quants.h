#pragma once
// The ggml tensor types a GGUF file may name: one traits table indexed by ggml type id
// (name, weights per block, bytes per block, dequantizers). Adding a type is one row in
// gguf_quants.cpp plus its block struct, whose on-disk size is checked by static_assert.
//
// Every supported type has two dequantizers:
//   - `reference`: plain scalar code written from the block layout (ggml-common.h /
//     ggml-quants.c semantics); it defines correctness;
//   - `dequantize`: the production path. Today it runs the same per-block kernel, split
//     across threads for large tensors; tests hold it to the reference bit for bit.
// Types without dequantizers (IQ*, TQ*, Q8_K, MXFP4, ...) are listed so files holding
// them still open and list their tensors; reading such a tensor is Error(Unsupported).

#include "novaq/tensor/dtype.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace novaq {

// Converts `blocks` consecutive blocks at `src` (any alignment) to blocks * blockSize floats.
using GgmlDequantFn = void (*)(const std::byte* src, size_t blocks, float* dst);

struct GgmlTypeTraits {
    uint32_t id;                // ggml_type as stored in GGUF tensor infos
    std::string_view name;      // as ggml spells it ("Q4_K")
    uint32_t blockSize;         // weights per block (1 for plain element types)
    uint32_t blockBytes;        // bytes per block on disk
    std::optional<DType> dtype; // the plain element type (F32, F16, BF16, integers), else nullopt
    GgmlDequantFn reference;    // scalar reference; nullptr when the type is not supported
    GgmlDequantFn dequantize;   // production path; nullptr when the type is not supported

    bool supported() const noexcept { return dequantize != nullptr; }
};

// All known ggml types, in id order (ids removed from GGUF files, e.g. 4 and 5, are absent).
std::span<const GgmlTypeTraits> ggmlTypeTable() noexcept;

// The row of type `id`, or nullptr when the id is not a ggml type we know.
const GgmlTypeTraits* ggmlTypeTraits(uint32_t id) noexcept;

// "F32, F16, Q4_0, ...": the types that convert to float, for messages.
std::string supportedGgmlTypeNames();

// The row named `name` (case-sensitive, "Q4_K"), or nullptr.
const GgmlTypeTraits* ggmlTypeByName(std::string_view name) noexcept;

// Dequantizes `count` weights (a multiple of the block size) of `type` with the production
// path. Throws Error(Unsupported) naming the type when it has no dequantizer.
void dequantizeGgml(const GgmlTypeTraits& type, const std::byte* src, size_t count, float* dst);

} // namespace novaq
