#pragma once
// GGUF (llama.cpp / ggml) model files, versions 2 and 3, little-endian.
//
// Tensors are listed in file order. Shapes are in our order (outermost first), i.e. GGUF's
// ne[] reversed. Plain F32/F16/BF16 (and integer) tensors report their dtype; block-
// quantized tensors report dtype F32 (what readFloat() gives) with `storage` naming the
// ggml type ("Q4_K"); nbytes and rawBytes() are the stored bytes either way. Types we
// cannot dequantize (IQ*, TQ*, ...) still list; reading them is Error(Unsupported).
//
// metadata(): {"architecture": general.architecture, "format_metadata": every key/value
// (arrays as JSON arrays, tokenizer included), "config": null, "gguf_version": 2 or 3}.
// Strings that are not valid UTF-8 have their invalid bytes replaced by U+FFFD.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

bool sniffGguf(std::span<const std::byte> head, uint64_t fileSize) noexcept;
std::unique_ptr<ModelReader> openGguf(const std::filesystem::path& path);

} // namespace novaq
