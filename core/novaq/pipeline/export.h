#pragma once

#include "novaq/pipeline/job.h"
#include "novaq/tensor/dtype.h"

#include <filesystem>

namespace novaq {

// Writes every tensor of any readable model (a .novaq file included: decoded) as
// safetensors under its original name, F32 or F16, through a temporary file and rename.
void exportSafetensors(const std::filesystem::path& model, const std::filesystem::path& output, DType dtype,
                       ProgressSink* sink, const CancelToken* cancel);

} // namespace novaq
