#pragma once
// The state every reader over memory-mapped files shares: the maps, the tensors, the
// metadata, bounds-checked access and page release. A format's reader derives from it and
// adds only how its bytes become floats.

#include "novaq/formats/model_reader.h"
#include "novaq/io/mapped_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

namespace novaq {

class MappedModelReader : public ModelReader {
public:
    ModelFormat format() const noexcept override { return m_format; }
    const std::vector<TensorInfo>& tensors() const noexcept override { return m_tensors; }
    const nlohmann::json& metadata() const noexcept override { return m_metadata; }
    const std::vector<std::filesystem::path>& files() const noexcept override { return m_files; }
    // Drops the pages of the tensor's byte range (offset, nbytes) in its file.
    void release(size_t index) const noexcept override;

protected:
    MappedModelReader(ModelFormat format, std::vector<MappedFile> maps, std::vector<TensorInfo> tensors,
                      nlohmann::json metadata);

    // Error(InvalidArgument) for an index past the last tensor.
    const TensorInfo& tensor(size_t index) const;
    // Error(InvalidArgument) naming the file and tensor when `outSize` is not its element count.
    void checkOutputSize(size_t index, size_t outSize) const;
    // The first byte of the file holding tensor `t`.
    const std::byte* fileData(const TensorInfo& t) const noexcept { return m_maps[t.fileIndex].data(); }

    std::vector<MappedFile> m_maps;
    std::vector<std::filesystem::path> m_files;
    std::vector<TensorInfo> m_tensors;
    nlohmann::json m_metadata;

private:
    ModelFormat m_format;
};

} // namespace novaq
