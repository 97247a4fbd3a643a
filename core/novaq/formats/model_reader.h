#pragma once
// Readers turn model files into named tensors plus metadata. Every format plugs in here:
// one row in the format table (formats/model_reader.cpp) with its magic-byte sniffer and
// its opener. Formats are chosen by content, never by file extension.

#include "novaq/tensor/tensor.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace novaq {

enum class ModelFormat { Safetensors, Gguf, PyTorch, Onnx, Llama2c, Novaq, Unknown };
// The format's name from its row of the format table ("unknown" for Unknown).
std::string_view formatName(ModelFormat format) noexcept;

class ModelReader {
public:
    virtual ~ModelReader() = default;

    virtual ModelFormat format() const noexcept = 0;
    virtual const std::vector<TensorInfo>& tensors() const noexcept = 0;

    // Everything known about the model besides its tensors: "config" (config.json, when
    // present), "format_metadata" (e.g. safetensors __metadata__), "architecture".
    virtual const nlohmann::json& metadata() const noexcept = 0;

    // The files the tensors live in (fileIndex indexes this list).
    virtual const std::vector<std::filesystem::path>& files() const noexcept = 0;

    // Converts tensor `index` to float into `out` (size numel). Throws Error naming the
    // file and tensor when the bytes cannot be read.
    virtual void readFloat(size_t index, std::span<float> out) const = 0;

    // The tensor's bytes as stored (dtype and layout of TensorInfo), mapped, not copied.
    virtual std::span<const std::byte> rawBytes(size_t index) const = 0;

    // Drops the pages of tensor `index` from memory once the caller is done with it.
    virtual void release(size_t index) const noexcept = 0;

    // Bytes of tensor data on disk (the sum of tensor sizes), for compression ratios.
    uint64_t tensorBytes() const noexcept;
    std::string architecture() const;
};

struct FormatEntry {
    ModelFormat format;
    std::string_view name; // what messages and reports call it: "safetensors", "GGUF", ...
    // True when the first bytes of a file (up to 64, fewer if the file is short) are this format's.
    std::function<bool(std::span<const std::byte> head, uint64_t fileSize)> sniff;
    std::function<std::unique_ptr<ModelReader>(const std::filesystem::path& path)> open;
};

// The format table. Readers of later formats register here.
std::span<const FormatEntry> formatTable();

// Detects a single file's format from its content.
ModelFormat detectFileFormat(const std::filesystem::path& path);

// Opens a model: a file of any known format, or a folder holding one (a sharded
// checkpoint's index, a single weights file). Throws Error naming the path and what was
// found when nothing readable is there.
std::unique_ptr<ModelReader> openModel(const std::filesystem::path& path);

} // namespace novaq
