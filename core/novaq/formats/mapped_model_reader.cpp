#include "novaq/formats/mapped_model_reader.h"

#include "novaq/io/error.h"

namespace novaq {

MappedModelReader::MappedModelReader(ModelFormat format, std::vector<MappedFile> maps, std::vector<TensorInfo> tensors,
                                     nlohmann::json metadata)
    : m_maps(std::move(maps)), m_tensors(std::move(tensors)), m_metadata(std::move(metadata)), m_format(format)
{
    for (const MappedFile& map : m_maps)
        m_files.push_back(map.path());
}

void MappedModelReader::release(size_t index) const noexcept
{
    if (index >= m_tensors.size())
        return;
    const TensorInfo& t = m_tensors[index];
    m_maps[t.fileIndex].release(t.offset, t.nbytes);
}

const TensorInfo& MappedModelReader::tensor(size_t index) const
{
    if (index >= m_tensors.size())
        throw Error(ErrorKind::InvalidArgument, "tensor index " + std::to_string(index) +
                                                    " is out of range: the model has " +
                                                    std::to_string(m_tensors.size()) + " tensors");
    return m_tensors[index];
}

void MappedModelReader::checkOutputSize(size_t index, size_t outSize) const
{
    const TensorInfo& t = tensor(index);
    const auto numel = static_cast<uint64_t>(t.numel());
    if (outSize != numel)
        throw Error(ErrorKind::InvalidArgument, m_files[t.fileIndex].string() + ": tensor \"" + t.name + "\" has " +
                                                    std::to_string(numel) + " elements, but the output holds " +
                                                    std::to_string(outSize));
}

} // namespace novaq
