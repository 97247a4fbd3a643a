#pragma once
// A .novaq file as a ModelReader: tensors under their original names and shapes, logical
// dtype F32, readFloat() decodes (quantized) or converts (raw). Lets export, validate and
// every other consumer treat compressed models like any other model.

#include "novaq/codec/quantized_tensor.h"
#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace novaq {

std::unique_ptr<ModelReader> openNovaqModel(const std::filesystem::path& path);

// The quantized matrix behind tensor `index` when `reader` is a .novaq file and the tensor
// is NOVAQ-coded (the runtime multiplies it in the code domain); nullopt otherwise.
std::optional<QuantizedTensor> quantizedTensorOf(const ModelReader& reader, size_t index);

// The files a .novaq file carries besides tensors (manifest "attachments": the source's
// tokenizer files), checksums verified; empty for other readers. Throws Error(Corrupt).
std::vector<std::pair<std::string, std::vector<std::byte>>> novaqAttachments(const ModelReader& reader);

} // namespace novaq
