#include "novaq/formats/llama2c_reader.h"

#include "novaq/formats/mapped_model_reader.h"
#include "novaq/io/byte_cursor.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"

#include <array>
#include <iterator>
#include <optional>
#include <string_view>

namespace novaq {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kHeaderBytes = 28;
constexpr int64_t kMaxDim = 1 << 20;

struct Config {
    int64_t dim, hidden, layers, heads, kvHeads, vocab, seqLen;
    bool sharedClassifier;
};

struct Layout {
    std::vector<TensorInfo> tensors;
    uint64_t bytes = 0; // header included
};

// The header: seven little-endian int32 at offset 0, in this order. A negative vocab_size
// says the classifier has its own weights.
constexpr std::string_view kFields[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                        "n_kv_heads", "vocab_size", "seq_len"};
static_assert(std::size(kFields) * 4 == kHeaderBytes);

Config configOf(const std::array<int32_t, 7>& v) noexcept
{
    return Config{v[0], v[1], v[2], v[3], v[4], v[5] < 0 ? -int64_t{v[5]} : int64_t{v[5]}, v[6], v[5] > 0};
}

// The first field of a header that no llama2.c checkpoint holds, and why.
struct HeaderFault {
    size_t field = 0; // index into kFields
    std::string_view rule;
};

std::optional<HeaderFault> headerFault(const Config& c) noexcept
{
    static_assert(kMaxDim == 1 << 20, "the rule below states the bound");
    const int64_t values[] = {c.dim, c.hidden, c.layers, c.heads, c.kvHeads, c.vocab, c.seqLen};
    for (size_t i = 0; i < std::size(values); ++i)
        if (values[i] <= 0 || values[i] > kMaxDim)
            return HeaderFault{i, "must be 1 to 1048576 (2^20)"};
    if (c.dim % c.heads != 0)
        return HeaderFault{3, "must divide dim"};
    if (c.kvHeads > c.heads || c.heads % c.kvHeads != 0)
        return HeaderFault{4, "must divide n_heads"};
    if ((c.dim / c.heads) % 2 != 0)
        return HeaderFault{3, "must leave an even head size (dim / n_heads)"};
    return std::nullopt;
}

// The header of a file that may be a checkpoint (for sniffing), or nullopt.
std::optional<Config> parseHeader(std::span<const std::byte> head) noexcept
{
    if (head.size() < kHeaderBytes)
        return std::nullopt;
    std::array<int32_t, 7> v{};
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = loadLe<int32_t>(head.data() + 4 * i);
    const Config c = configOf(v);
    if (headerFault(c))
        return std::nullopt;
    return c;
}

// The header of a file opened as a checkpoint; a field no checkpoint holds is named.
Config readHeader(const MappedFile& map)
{
    ByteCursor cursor(map.bytes(), map.path().string());
    cursor.setContext("llama2.c header");
    std::array<int32_t, 7> v{};
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = cursor.read<int32_t>(kFields[i]);
    const Config c = configOf(v);
    if (const std::optional<HeaderFault> fault = headerFault(c))
        cursor.fail(std::string(kFields[fault->field]) + " is " + std::to_string(v[fault->field]) + ", but it " +
                        std::string(fault->rule) + "; this is not a llama2.c checkpoint (or its header is damaged)",
                    4 * fault->field);
    return c;
}

// The file size the header implies, or nullopt when it passes 64 bits. Computed before any
// tensor is listed: a 28-byte header may claim 2^20 layers (9 million tensors, gigabytes of
// TensorInfo), and dimensions near 2^20 make the sum wrap around to a small size; found by
// fuzz_llama2c (a 28-byte file whose wrapped size was exactly 28 bytes opened as a model).
std::optional<uint64_t> impliedBytes(const Config& c)
{
    bool overflow = false;
    auto mul = [&](uint64_t a, uint64_t b) {
        uint64_t r = 0;
        overflow = __builtin_mul_overflow(a, b, &r) || overflow;
        return r;
    };
    auto add = [&](uint64_t a, uint64_t b) {
        uint64_t r = 0;
        overflow = __builtin_add_overflow(a, b, &r) || overflow;
        return r;
    };
    const auto dim = static_cast<uint64_t>(c.dim), hidden = static_cast<uint64_t>(c.hidden);
    const auto hs = static_cast<uint64_t>(c.dim / c.heads);
    const uint64_t qDim = mul(static_cast<uint64_t>(c.heads), hs), kvDim = mul(static_cast<uint64_t>(c.kvHeads), hs);
    // Per layer (layoutOf's order): two norms, wq, wk, wv, wo, w1, w2, w3.
    uint64_t perLayer = add(mul(2, dim), mul(qDim, dim));
    perLayer = add(perLayer, mul(mul(2, kvDim), dim));
    perLayer = add(perLayer, mul(dim, qDim));
    perLayer = add(perLayer, mul(mul(3, hidden), dim));
    const uint64_t embedding = mul(static_cast<uint64_t>(c.vocab), dim);
    uint64_t elements = add(embedding, mul(static_cast<uint64_t>(c.layers), perLayer));
    elements = add(elements, dim);                                                  // norm.weight
    elements = add(elements, mul(2, mul(static_cast<uint64_t>(c.seqLen), hs) / 2)); // freq_cis
    if (!c.sharedClassifier)
        elements = add(elements, embedding); // output.weight
    const uint64_t bytes = add(kHeaderBytes, mul(elements, 4));
    if (overflow)
        return std::nullopt;
    return bytes;
}

// The tensors in file order, under the names llama2.c's exporter reads from PyTorch
// (Meta's naming), with PyTorch shapes (out, in). The RoPE tables are skipped.
// The cursor walks the file: a tensor that would end past it is refused, naming it (the size
// was checked against the header first; this holds the layout to the bytes too).
Layout layoutOf(const Config& c, const MappedFile& map)
{
    Layout l;
    ByteCursor cursor(map.bytes(), map.path().string());
    cursor.setContext("llama2.c tensors");
    cursor.skip(kHeaderBytes, "header");
    const int64_t hs = c.dim / c.heads;
    auto add = [&](std::string name, std::vector<int64_t> shape) {
        TensorInfo t;
        t.name = std::move(name);
        t.shape = std::move(shape);
        t.dtype = DType::F32;
        t.offset = cursor.pos();
        t.nbytes = static_cast<uint64_t>(t.numel()) * 4;
        cursor.skip(t.nbytes, t.name);
        l.tensors.push_back(std::move(t));
    };
    auto perLayer = [&](const std::string& suffix, std::vector<int64_t> shape) {
        for (int64_t i = 0; i < c.layers; ++i)
            add("layers." + std::to_string(i) + "." + suffix, shape);
    };
    add("tok_embeddings.weight", {c.vocab, c.dim});
    perLayer("attention_norm.weight", {c.dim});
    perLayer("attention.wq.weight", {c.heads * hs, c.dim});
    perLayer("attention.wk.weight", {c.kvHeads * hs, c.dim});
    perLayer("attention.wv.weight", {c.kvHeads * hs, c.dim});
    perLayer("attention.wo.weight", {c.dim, c.heads * hs});
    perLayer("ffn_norm.weight", {c.dim});
    perLayer("feed_forward.w1.weight", {c.hidden, c.dim});
    perLayer("feed_forward.w2.weight", {c.dim, c.hidden});
    perLayer("feed_forward.w3.weight", {c.hidden, c.dim});
    add("norm.weight", {c.dim});
    cursor.skip(2 * static_cast<uint64_t>(c.seqLen * hs / 2) * 4, "freq_cis_real and freq_cis_imag");
    if (!c.sharedClassifier)
        add("output.weight", {c.vocab, c.dim});
    l.bytes = cursor.pos();
    return l;
}

class Llama2cModel final : public MappedModelReader {
public:
    Llama2cModel(MappedFile map, std::vector<TensorInfo> tensors, nlohmann::json metadata)
        : MappedModelReader(ModelFormat::Llama2c, single(std::move(map)), std::move(tensors), std::move(metadata))
    {}

    void readFloat(size_t index, std::span<float> out) const override
    {
        checkOutputSize(index, out.size());
        const TensorInfo& t = m_tensors[index];
        convertToFloat(DType::F32, fileData(t) + t.offset, out.size(), out.data());
    }

    std::span<const std::byte> rawBytes(size_t index) const override
    {
        const TensorInfo& t = tensor(index);
        return {fileData(t) + t.offset, static_cast<size_t>(t.nbytes)};
    }

private:
    static std::vector<MappedFile> single(MappedFile map)
    {
        std::vector<MappedFile> maps;
        maps.push_back(std::move(map));
        return maps;
    }
};

} // namespace

bool sniffLlama2c(std::span<const std::byte> head, uint64_t fileSize) noexcept
{
    const auto config = parseHeader(head);
    return config && impliedBytes(*config) == fileSize;
}

std::unique_ptr<ModelReader> openLlama2c(const fs::path& path)
{
    MappedFile map(path);
    const Config config = readHeader(map);
    const std::optional<uint64_t> bytes = impliedBytes(config);
    if (!bytes)
        throw Error(ErrorKind::InvalidInput, path.string() +
                                                 ": the dimensions of the llama2.c header imply more than 2^64 bytes "
                                                 "(not a llama2.c checkpoint, or a damaged header)");
    if (*bytes != map.size())
        throw Error(ErrorKind::InvalidInput, path.string() + ": a llama2.c header for " + std::to_string(*bytes) +
                                                 " bytes, but the file has " + std::to_string(map.size()) +
                                                 " (truncated or not this format)");
    Layout layout = layoutOf(config, map);
    const Config& c = config;
    nlohmann::json hyper = {{"dim", c.dim},
                            {"hidden_dim", c.hidden},
                            {"n_layers", c.layers},
                            {"n_heads", c.heads},
                            {"n_kv_heads", c.kvHeads},
                            {"vocab_size", c.vocab},
                            {"seq_len", c.seqLen},
                            {"shared_classifier", c.sharedClassifier}};
    nlohmann::json metadata = {{"architecture", "llama"}, {"format_metadata", hyper}, {"config", nullptr}};
    return std::make_unique<Llama2cModel>(std::move(map), std::move(layout.tensors), std::move(metadata));
}

} // namespace novaq
