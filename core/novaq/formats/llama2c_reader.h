#pragma once
// llama2.c checkpoints (Karpathy's run.c "version 0" format): seven little-endian int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
// vocab_size means a separate classifier) and then every weight as F32 in a fixed order.
// The format has no magic number, so it is recognized by a header whose dimensions are
// plausible and whose implied size equals the file size exactly.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

bool sniffLlama2c(std::span<const std::byte> head, uint64_t fileSize) noexcept;
std::unique_ptr<ModelReader> openLlama2c(const std::filesystem::path& path);

} // namespace novaq
