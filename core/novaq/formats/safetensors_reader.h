#pragma once
// safetensors: single files and sharded checkpoints (model.safetensors.index.json), with
// config.json read as metadata when it sits beside them.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

bool sniffSafetensors(std::span<const std::byte> head, uint64_t fileSize) noexcept;
std::unique_ptr<ModelReader> openSafetensors(const std::filesystem::path& path);       // one file
std::unique_ptr<ModelReader> openSafetensorsIndex(const std::filesystem::path& index); // sharded

} // namespace novaq
