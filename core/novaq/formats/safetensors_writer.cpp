#include "novaq/formats/safetensors_writer.h"

#include "novaq/io/atomic_file.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <set>

namespace novaq {

namespace {

// Floats converted per write: bounds the scratch buffer whatever the tensor size.
constexpr size_t kChunkElements = size_t(1) << 18;

} // namespace

struct SafetensorsWriter::Impl {
    explicit Impl(const std::filesystem::path& target) : file(target) {}
    AtomicFile file;
    std::vector<Entry> entries;
    std::vector<uint64_t> numel;
    size_t next = 0;
    bool committed = false;
    std::vector<std::byte> scratch;
};

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& target, std::vector<Entry> entries,
                                     const std::map<std::string, std::string>& metadata)
{
    // Check everything before creating the temporary file.
    std::set<std::string> names;
    std::vector<uint64_t> counts;
    counts.reserve(entries.size());
    for (const Entry& e : entries) {
        if (e.dtype != DType::F32 && e.dtype != DType::F16 && e.dtype != DType::BF16)
            throw Error(ErrorKind::InvalidArgument, "safetensors export of '" + e.name + "': element type " +
                                                        std::string(dtypeInfo(e.dtype).name) +
                                                        " cannot be written from floats (use F32, F16 or BF16)");
        if (e.name.empty() || e.name == "__metadata__")
            throw Error(ErrorKind::InvalidArgument, "safetensors export: invalid tensor name '" + e.name + "'");
        if (!names.insert(e.name).second)
            throw Error(ErrorKind::InvalidArgument, "safetensors export: tensor name '" + e.name + "' appears twice");
        uint64_t n = 1;
        for (int64_t dim : e.shape) {
            if (dim < 0)
                throw Error(ErrorKind::InvalidArgument,
                            "safetensors export of '" + e.name + "': negative dimension " + std::to_string(dim));
            if (dim != 0 && n > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(dim))
                throw Error(ErrorKind::InvalidArgument, "safetensors export of '" + e.name + "': shape too large");
            n *= static_cast<uint64_t>(dim);
        }
        counts.push_back(n);
    }

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json meta = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata)
            meta[key] = value;
        header["__metadata__"] = std::move(meta);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        const uint64_t bytes = counts[i] * dtypeInfo(entries[i].dtype).bytes;
        header[entries[i].name] = {{"dtype", std::string(dtypeInfo(entries[i].dtype).name)},
                                   {"shape", entries[i].shape},
                                   {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    while (text.size() % 8 != 0)
        text.push_back(' ');

    m_impl = std::make_unique<Impl>(target);
    m_impl->entries = std::move(entries);
    m_impl->numel = std::move(counts);

    std::byte length[8];
    storeLe<uint64_t>(length, text.size());
    m_impl->file.write(length);
    m_impl->file.write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

SafetensorsWriter::~SafetensorsWriter() = default; // AtomicFile deletes the temporary file unless committed

void SafetensorsWriter::writeTensor(size_t index, std::span<const float> values)
{
    Impl& d = *m_impl;
    if (d.committed)
        throw Error(ErrorKind::InvalidArgument, "safetensors export: writeTensor() after commit()");
    if (index != d.next)
        throw Error(ErrorKind::InvalidArgument,
                    "safetensors export to '" + d.file.target().string() + "': tensor " + std::to_string(index) +
                        " written out of order (" +
                        (d.next < d.entries.size() ? "expected tensor " + std::to_string(d.next) + ")"
                                                   : std::string("all tensors already written)")));
    const Entry& e = d.entries[index];
    if (values.size() != d.numel[index])
        throw Error(ErrorKind::InvalidArgument, "safetensors export of '" + e.name +
                                                    "': " + std::to_string(values.size()) +
                                                    " values given, the shape holds " + std::to_string(d.numel[index]));
    const size_t elementBytes = dtypeInfo(e.dtype).bytes;
    for (size_t begin = 0; begin < values.size(); begin += kChunkElements) {
        const size_t count = std::min(kChunkElements, values.size() - begin);
        d.scratch.resize(count * elementBytes);
        convertFromFloat(e.dtype, values.data() + begin, count, d.scratch.data());
        d.file.write(std::span<const std::byte>(d.scratch.data(), count * elementBytes));
    }
    ++d.next;
}

void SafetensorsWriter::commit()
{
    Impl& d = *m_impl;
    if (d.committed)
        return;
    if (d.next != d.entries.size())
        throw Error(ErrorKind::InvalidArgument, "safetensors export to '" + d.file.target().string() + "': only " +
                                                    std::to_string(d.next) + " of " + std::to_string(d.entries.size()) +
                                                    " tensors were written");
    d.file.commit();
    d.committed = true;
    d.scratch = {};
}

} // namespace novaq
