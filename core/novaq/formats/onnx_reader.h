#pragma once
// ONNX models: the initializers of ModelProto.graph, read by streaming over a memory map
// (a 10 GB model is never loaded at once). Values may be raw_data (mapped, not copied),
// typed fields (float_data, int32_data, int64_data, double_data; converted when read) or
// external data in files beside the model (mapped), whose locations must stay inside the
// model's folder. config.json beside the model is read as metadata when present.
//
// Not read (yet): tensors inside Constant nodes and training_info; sparse initializers and
// segmented tensors are refused as Unsupported. External files must resolve (symbolic links
// followed) inside the model's folder; hard links are not detected.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

// True when the first bytes look like a ModelProto: field 1 ir_version (a small varint)
// first, then well-formed ModelProto fields up to graph or opset_import.
bool sniffOnnx(std::span<const std::byte> head, uint64_t fileSize) noexcept;

// Throws Error(InvalidInput) naming the file, tensor, field and byte offset for a malformed
// file, Error(Unsupported) for a data type or feature we cannot read, Error(Io) when a file
// cannot be opened.
std::unique_ptr<ModelReader> openOnnx(const std::filesystem::path& path);

} // namespace novaq
