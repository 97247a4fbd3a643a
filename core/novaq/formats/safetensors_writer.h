#pragma once
// Writes safetensors files the way the official writer lays them out: compact JSON header
// with "__metadata__" first, padded with spaces to a multiple of 8, tensors back to back.
// Streams tensor by tensor through a temporary file renamed when complete.

#include "novaq/tensor/dtype.h"

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace novaq {

class SafetensorsWriter {
public:
    struct Entry {
        std::string name;
        std::vector<int64_t> shape;
        DType dtype;
    };
    // All tensors must be declared up front (the header comes first in the file).
    SafetensorsWriter(const std::filesystem::path& target, std::vector<Entry> entries,
                      const std::map<std::string, std::string>& metadata);
    ~SafetensorsWriter(); // deletes the temporary file unless commit() ran
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    // Tensors in the order declared; `values` has numel floats, converted to the entry's dtype.
    void writeTensor(size_t index, std::span<const float> values);
    void commit();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace novaq
