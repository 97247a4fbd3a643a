#pragma once

#include "novaq/tensor/dtype.h"

#include <cstdint>
#include <string>
#include <vector>

namespace novaq {

// One named tensor as a reader found it: where its bytes are and how to read them.
struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape; // row-major, outermost first (PyTorch order)
    DType dtype = DType::F32;
    uint32_t fileIndex = 0; // which file of a sharded checkpoint
    uint64_t offset = 0;    // absolute byte offset in that file
    uint64_t nbytes = 0;
    // The on-disk encoding when it is not a plain element type, e.g. a GGUF block type
    // ("Q4_K"). Such tensors report dtype F32 (what readFloat() gives) and are never copied raw.
    std::string storage;

    int64_t numel() const noexcept;
    // Rows and columns as the codec sees a weight: rows = shape[0], cols = product of the rest.
    int64_t rows() const noexcept;
    int64_t cols() const noexcept;
};

std::string shapeToString(const std::vector<int64_t>& shape);

} // namespace novaq
