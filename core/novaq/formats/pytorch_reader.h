#pragma once
// PyTorch checkpoints: the zip format of torch.save (since torch 1.6; any archive prefix), the
// legacy pre-zip pickle stream, and sharded checkpoints (pytorch_model.bin.index.json), with
// config.json read as metadata when it sits beside them.
//
// The pickle is read by an allowlist unpickler (formats/unpickler.h) that never runs code: a
// file naming any global besides OrderedDict, the tensor rebuild functions and the storage
// classes is refused with the global's name in the message.
//
// Tensors are views into storages: contiguous views map straight into the file (rawBytes() is
// a span into the mapping); non-contiguous views (strided slices, expanded dimensions) are
// gathered by readFloat(), and rawBytes() gathers them into a buffer the reader keeps until
// release(index). Several tensors may share one storage (tied embeddings); each is listed.

#include "novaq/formats/model_reader.h"

#include <filesystem>
#include <memory>

namespace novaq {

// A zip archive (local header magic) or a legacy stream (pickle with torch's magic number).
bool sniffPyTorch(std::span<const std::byte> head, uint64_t fileSize) noexcept;
std::unique_ptr<ModelReader> openPyTorch(const std::filesystem::path& path);       // one file
std::unique_ptr<ModelReader> openPyTorchIndex(const std::filesystem::path& index); // sharded

} // namespace novaq
