#pragma once
// A .novaq file as a ModelReader: tensors under their original names and shapes, logical
// dtype F32, readFloat() decodes (quantized) or converts (raw). Lets export, validate and
// every other consumer treat compressed models like any other model.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

std::unique_ptr<ModelReader> openNovaqModel(const std::filesystem::path& path);

} // namespace novaq
