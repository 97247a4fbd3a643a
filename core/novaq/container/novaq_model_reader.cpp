#include "novaq/container/novaq_model_reader.h"

#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/io/error.h"

#include <string>

namespace novaq {

namespace {

nlohmann::json valueOrNull(const nlohmann::json& object, const char* key)
{
    auto it = object.find(key);
    return it == object.end() ? nlohmann::json() : *it;
}

class NovaqModelReader final : public ModelReader {
public:
    explicit NovaqModelReader(const std::filesystem::path& path) : m_file(path), m_files{path}
    {
        try {
            m_records = tensorRecords(m_file.manifest(), m_file.fileSize());
        } catch (const Error& e) {
            throw Error(e.kind(), path.string() + ": " + e.what());
        }
        m_tensors.reserve(m_records.size());
        for (const TensorRecord& r : m_records) {
            TensorInfo info;
            info.name = r.name;
            info.shape = r.shape;
            info.dtype = DType::F32;
            info.fileIndex = 0;
            info.offset = r.data.offset;
            info.nbytes = r.data.length;
            if (r.encoding ==
                TensorEncoding::Gguf) // as the GGUF reader names them: inspect shows it, compress keeps it
                info.storage = std::string(r.ggml->name);
            m_tensors.push_back(std::move(info));
        }
        const nlohmann::json& manifest = m_file.manifest();
        m_metadata = nlohmann::json::object();
        m_metadata["config"] = valueOrNull(manifest, "config");
        m_metadata["format_metadata"] = valueOrNull(manifest, "format_metadata");
        m_metadata["architecture"] = valueOrNull(manifest, "architecture");
        m_metadata["novaq"] = {{"settings", valueOrNull(manifest, "settings")},
                               {"source", valueOrNull(manifest, "source")}};
    }

    ModelFormat format() const noexcept override { return ModelFormat::Novaq; }
    const std::vector<TensorInfo>& tensors() const noexcept override { return m_tensors; }
    const nlohmann::json& metadata() const noexcept override { return m_metadata; }
    const std::vector<std::filesystem::path>& files() const noexcept override { return m_files; }

    void readFloat(size_t index, std::span<float> out) const override
    {
        const TensorRecord& r = record(index);
        const TensorInfo& info = m_tensors[index];
        const int64_t numel = info.numel();
        if (out.size() != static_cast<size_t>(numel))
            throw Error(ErrorKind::InvalidArgument,
                        "readFloat of tensor '" + r.name + "' in " + m_file.path().string() + ": buffer holds " +
                            std::to_string(out.size()) + " floats, the tensor has " + std::to_string(numel));
        const std::span<const std::byte> bytes = m_file.section(r.data, "tensor '" + r.name + "'");
        if (r.encoding == TensorEncoding::Raw) {
            convertToFloat(r.dtype, bytes.data(), out.size(), out.data());
            return;
        }
        if (r.encoding == TensorEncoding::Gguf) { // blocks as in the source GGUF (tensorRecords checked the length)
            dequantizeGgml(*r.ggml, bytes.data(), out.size(), out.data());
            return;
        }
        try {
            const QuantizedTensor q = deserialize(bytes, info.rows(), info.cols(), r.codec, r.colScale);
            decode(q, out);
        } catch (const Error& e) {
            throw Error(e.kind(), m_file.path().string() + ": tensor '" + r.name + "': " + e.what());
        }
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorRecord& r = record(index);
        return m_file.section(r.data, "tensor '" + r.name + "'", false);
    }

    void release(size_t index) const noexcept override
    {
        if (index < m_records.size())
            m_file.release(m_records[index].data);
    }

    std::optional<QuantizedTensor> quantized(size_t index) const
    {
        const TensorRecord& r = record(index);
        if (r.encoding != TensorEncoding::Novaq)
            return std::nullopt;
        const TensorInfo& info = m_tensors[index];
        try {
            return deserialize(m_file.section(r.data, "tensor '" + r.name + "'"), info.rows(), info.cols(), r.codec,
                               r.colScale);
        } catch (const Error& e) {
            throw Error(e.kind(), m_file.path().string() + ": tensor '" + r.name + "': " + e.what());
        }
    }

    std::vector<std::pair<std::string, std::vector<std::byte>>> attachments() const
    {
        std::vector<std::pair<std::string, std::vector<std::byte>>> out;
        const nlohmann::json& manifest = m_file.manifest();
        const auto it = manifest.find("attachments");
        if (it == manifest.end() || it->is_null())
            return out;
        if (!it->is_array())
            throw Error(ErrorKind::Corrupt, m_file.path().string() + ": manifest field attachments: expected an array");
        for (size_t k = 0; k < it->size(); ++k) {
            const nlohmann::json& a = (*it)[k];
            const std::string where = "attachments[" + std::to_string(k) + "]";
            if (!a.is_object() || !a.contains("name") || !a["name"].is_string() || !a.contains("data"))
                throw Error(ErrorKind::Corrupt,
                            m_file.path().string() + ": manifest field " + where + ": expected {name, data}");
            const std::string name = a["name"].get<std::string>();
            if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
                name == "." || name == "..")
                throw Error(ErrorKind::Corrupt, m_file.path().string() + ": manifest field " + where + ".name: '" +
                                                    name + "' is not a plain file name");
            const SectionRef ref = SectionRef::fromJson(a["data"], "manifest field " + where + ".data");
            const auto bytes = m_file.section(ref, "attachment '" + name + "'");
            out.emplace_back(name, std::vector<std::byte>(bytes.begin(), bytes.end()));
        }
        return out;
    }

private:
    const TensorRecord& record(size_t index) const
    {
        if (index >= m_records.size())
            throw Error(ErrorKind::InvalidArgument, "tensor index " + std::to_string(index) + " out of range (" +
                                                        m_file.path().string() + " has " +
                                                        std::to_string(m_records.size()) + " tensors)");
        return m_records[index];
    }

    NovaqFile m_file;
    std::vector<std::filesystem::path> m_files;
    std::vector<TensorRecord> m_records;
    std::vector<TensorInfo> m_tensors;
    nlohmann::json m_metadata;
};

} // namespace

std::unique_ptr<ModelReader> openNovaqModel(const std::filesystem::path& path)
{
    return std::make_unique<NovaqModelReader>(path);
}

std::vector<std::pair<std::string, std::vector<std::byte>>> novaqAttachments(const ModelReader& reader)
{
    if (const auto* novaq = dynamic_cast<const NovaqModelReader*>(&reader))
        return novaq->attachments();
    return {};
}

std::optional<QuantizedTensor> quantizedTensorOf(const ModelReader& reader, size_t index)
{
    if (const auto* novaq = dynamic_cast<const NovaqModelReader*>(&reader))
        return novaq->quantized(index);
    return std::nullopt;
}

} // namespace novaq
