#pragma once
// Readers turn model files into named tensors plus metadata. Every format plugs in with a
// ModelReader subclass here and one row in the format table (container/open_model.cpp: its
// name, magic-byte sniffer and opener; the table sits in the container layer because its
// .novaq row opens a NOVAQ file). Formats are chosen by content, never by file extension.

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

} // namespace novaq
