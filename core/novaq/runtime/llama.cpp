#include "novaq/runtime/llama.h"

#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/novaq_model_reader.h"
#include "novaq/io/error.h"
#include "novaq/runtime/quantized_linear.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

namespace novaq {

using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------
// Configuration

const json* member(const json& object, const char* key)
{
    if (!object.is_object())
        return nullptr;
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

// Configuration values are checked where they are read: a value out of range would become
// an undefined float-to-int conversion, a negative context or a NaN perplexity later on.
// Every problem is Error(InvalidInput) naming the source (config.json, GGUF metadata or the
// llama.c header), the field and the value.
struct ConfigSource {
    std::string file;  // the model's first file
    const char* name;  // "config.json", "GGUF metadata", "llama.c header"
    const char* field; // "field" or "key"
    std::string where() const { return file + ": " + name; }
};

std::string valueText(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

[[noreturn]] void badValue(const ConfigSource& src, const char* key, const json& v, const std::string& expected)
{
    throw Error(ErrorKind::InvalidInput, src.where() + " " + src.field + " '" + key + "' = " + valueText(v) +
                                             " is not " + expected + "; fix the model's configuration");
}

// The number under `key`, or nullopt when it is absent or null.
std::optional<double> number(const json& object, const char* key, const ConfigSource& src)
{
    const json* v = member(object, key);
    if (!v)
        return std::nullopt;
    if (!v->is_number())
        badValue(src, key, *v, "a number");
    return v->get<double>();
}

std::optional<int> optionalInt(const json& object, const char* key, const ConfigSource& src, int64_t lo, int64_t hi)
{
    const std::optional<double> v = number(object, key, src);
    if (!v)
        return std::nullopt;
    if (!(*v >= static_cast<double>(lo) && *v <= static_cast<double>(hi)) || std::floor(*v) != *v)
        badValue(src, key, (*member(object, key)), "an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<int>(*v);
}

constexpr int64_t kMaxDimension = 10'000'000;
constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

int requiredInt(const json& object, const char* key, const ConfigSource& src)
{
    const std::optional<int> v = optionalInt(object, key, src, 1, kMaxDimension);
    if (!v)
        throw Error(ErrorKind::InvalidInput,
                    src.where() + " " + src.field + " '" + key + "' is missing; fix the model's configuration");
    return *v;
}

// rms_norm_eps, rope_theta: finite and > 0 as the 32-bit float the runtime uses.
std::optional<float> positiveFloat(const json& object, const char* key, const ConfigSource& src)
{
    const std::optional<double> v = number(object, key, src);
    if (!v)
        return std::nullopt;
    // (a double beyond the float range has no float conversion; check before converting)
    if (!(*v > 0) || !(*v <= std::numeric_limits<float>::max()) || !(static_cast<float>(*v) > 0))
        badValue(src, key, *member(object, key), "a finite number > 0 (as a 32-bit float)");
    return static_cast<float>(*v);
}

// Tensor names of the three naming schemes we meet (Hugging Face, GGUF, Meta/llama2.c).
struct NameScheme {
    const char* embedding;
    const char* output;
    const char* finalNorm;
    const char* layerPrefix; // followed by the layer number and '.'
    const char* slots[kLinearSlots];
    const char* attnNorm;
    const char* ffnNorm;
    bool ropeHalves;
};

constexpr NameScheme kSchemes[] = {
    {"model.embed_tokens.weight",
     "lm_head.weight",
     "model.norm.weight",
     "model.layers.",
     {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
      "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"},
     "input_layernorm.weight",
     "post_attention_layernorm.weight",
     true},
    {"token_embd.weight",
     "output.weight",
     "output_norm.weight",
     "blk.",
     {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
      "ffn_down.weight"},
     "attn_norm.weight",
     "ffn_norm.weight",
     false},
    {"tok_embeddings.weight",
     "output.weight",
     "norm.weight",
     "layers.",
     {"attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "attention.wo.weight",
      "feed_forward.w1.weight", "feed_forward.w3.weight", "feed_forward.w2.weight"},
     "attention_norm.weight",
     "ffn_norm.weight",
     false},
};

std::map<std::string, size_t> tensorIndex(const ModelReader& reader)
{
    std::map<std::string, size_t> index;
    const auto& tensors = reader.tensors();
    for (size_t i = 0; i < tensors.size(); ++i)
        index.emplace(tensors[i].name, i);
    return index;
}

const NameScheme* schemeOf(const std::map<std::string, size_t>& index)
{
    for (const NameScheme& s : kSchemes)
        if (index.count(s.embedding))
            return &s;
    return nullptr;
}

std::string modelLabel(const ModelReader& reader)
{
    return reader.files().empty() ? std::string("the model") : reader.files().front().string();
}

[[noreturn]] void unsupported(const ModelReader& reader, const std::string& why)
{
    throw Error(ErrorKind::Unsupported, modelLabel(reader) + ": " + why +
                                            ". Evaluation and calibration run Llama-family models only "
                                            "(Llama 2/3, Mistral, TinyLlama, SmolLM, llama2.c); compressing "
                                            "this model without --calibration still works");
}

} // namespace

LlamaConfig llamaConfig(const ModelReader& reader)
{
    const json& meta = reader.metadata();
    const std::string arch = reader.architecture();
    const json* config = member(meta, "config");
    const json* fmeta = member(meta, "format_metadata");
    const std::string where = modelLabel(reader);

    LlamaConfig c;
    ConfigSource src{where, "config.json", "field"};
    const char* dimKey = "hidden_size";
    const char* headsKey = "num_attention_heads";
    const char* kvKey = "num_key_value_heads";
    const char* bosKey = "bos_token_id";
    const json* values = nullptr; // where bos_token_id came from
    if (config && config->is_object()) {
        const std::string type = member(*config, "model_type") && (*config)["model_type"].is_string()
                                     ? (*config)["model_type"].get<std::string>()
                                     : arch;
        if (type != "llama" && type != "mistral")
            unsupported(reader, "architecture '" + type + "' (config.json model_type) is not supported for evaluation");
        src = {where, "config.json", "field"};
        values = config;
        c.dim = requiredInt(*config, "hidden_size", src);
        c.hiddenDim = requiredInt(*config, "intermediate_size", src);
        c.layers = requiredInt(*config, "num_hidden_layers", src);
        c.heads = requiredInt(*config, "num_attention_heads", src);
        c.kvHeads = optionalInt(*config, "num_key_value_heads", src, 1, kMaxDimension).value_or(c.heads);
        c.vocab = requiredInt(*config, "vocab_size", src);
        c.maxSeq = optionalInt(*config, "max_position_embeddings", src, 1, kMaxInt).value_or(c.maxSeq);
        c.normEps = positiveFloat(*config, "rms_norm_eps", src).value_or(c.normEps);
        c.ropeTheta = positiveFloat(*config, "rope_theta", src).value_or(c.ropeTheta);
        if (const json* scaling = member(*config, "rope_scaling"))
            unsupported(reader,
                        "RoPE scaling (config.json rope_scaling = " + valueText(*scaling) + ") is not implemented");
        // Token ids: a number, or (eos_token_id of newer models) a list, which we leave to the tokenizer.
        if (const json* v = member(*config, "bos_token_id"); v && !v->is_array())
            c.bos = *optionalInt(*config, "bos_token_id", src, 0, kMaxInt);
        if (const json* v = member(*config, "eos_token_id"); v && !v->is_array())
            c.eos = *optionalInt(*config, "eos_token_id", src, 0, kMaxInt);
        if (auto v = optionalInt(*config, "head_dim", src, 1, kMaxDimension); v && *v != c.dim / c.heads)
            unsupported(reader, "a head size (head_dim " + std::to_string(*v) +
                                    ") other than hidden_size / num_attention_heads");
    } else if (fmeta && member(*fmeta, "llama.embedding_length")) {
        if (arch != "llama")
            unsupported(reader, "GGUF architecture '" + arch + "' is not supported for evaluation");
        src = {where, "GGUF metadata", "key"};
        values = fmeta;
        dimKey = "llama.embedding_length";
        headsKey = "llama.attention.head_count";
        kvKey = "llama.attention.head_count_kv";
        bosKey = "tokenizer.ggml.bos_token_id";
        c.dim = requiredInt(*fmeta, "llama.embedding_length", src);
        c.hiddenDim = requiredInt(*fmeta, "llama.feed_forward_length", src);
        c.layers = requiredInt(*fmeta, "llama.block_count", src);
        c.heads = requiredInt(*fmeta, "llama.attention.head_count", src);
        c.kvHeads = optionalInt(*fmeta, "llama.attention.head_count_kv", src, 1, kMaxDimension).value_or(c.heads);
        c.maxSeq = optionalInt(*fmeta, "llama.context_length", src, 1, kMaxInt).value_or(c.maxSeq);
        c.normEps = positiveFloat(*fmeta, "llama.attention.layer_norm_rms_epsilon", src).value_or(c.normEps);
        c.ropeTheta = positiveFloat(*fmeta, "llama.rope.freq_base", src).value_or(c.ropeTheta);
        c.bos = optionalInt(*fmeta, "tokenizer.ggml.bos_token_id", src, 0, kMaxInt).value_or(c.bos);
        c.eos = optionalInt(*fmeta, "tokenizer.ggml.eos_token_id", src, 0, kMaxInt).value_or(c.eos);
        if (auto v = optionalInt(*fmeta, "llama.rope.dimension_count", src, 1, kMaxDimension);
            v && *v != c.dim / c.heads)
            unsupported(reader, "partial rotary embeddings (llama.rope.dimension_count)");
    } else if (fmeta && member(*fmeta, "n_heads") && arch == "llama") {
        src = {where, "llama.c header", "field"};
        dimKey = "dim";
        headsKey = "n_heads";
        kvKey = "n_kv_heads";
        c.dim = requiredInt(*fmeta, "dim", src);
        c.hiddenDim = requiredInt(*fmeta, "hidden_dim", src);
        c.layers = requiredInt(*fmeta, "n_layers", src);
        c.heads = requiredInt(*fmeta, "n_heads", src);
        c.kvHeads = requiredInt(*fmeta, "n_kv_heads", src);
        c.vocab = requiredInt(*fmeta, "vocab_size", src);
        c.maxSeq = requiredInt(*fmeta, "seq_len", src);
        c.bos = 1;
        c.eos = 2;
    } else if (arch != "llama" && arch != "mistral" && arch != "unknown") {
        unsupported(reader, "architecture '" + arch + "' is not supported for evaluation");
    } else {
        unsupported(reader, "no model configuration found (a config.json beside the weights, GGUF llama.* "
                            "metadata or a llama2.c header)");
    }
    if (c.dim % c.heads != 0 || c.heads % c.kvHeads != 0 || c.headDim() % 2 != 0)
        throw Error(ErrorKind::InvalidInput, src.where() + ": inconsistent attention shape: " + headsKey + " (" +
                                                 std::to_string(c.heads) + ") must divide " + dimKey + " (" +
                                                 std::to_string(c.dim) + ") into heads of an even size, and " + kvKey +
                                                 " (" + std::to_string(c.kvHeads) + ") must divide " + headsKey +
                                                 "; fix the model's configuration");

    const auto index = tensorIndex(reader);
    const NameScheme* scheme = schemeOf(index);
    if (!scheme)
        unsupported(reader, "no token embedding tensor under a Llama name (model.embed_tokens.weight, "
                            "token_embd.weight or tok_embeddings.weight)");
    c.ropeHalves = scheme->ropeHalves;
    const TensorInfo& emb = reader.tensors()[index.at(scheme->embedding)];
    if (c.vocab == 0)
        c.vocab = static_cast<int>(emb.rows());
    if (emb.shape.size() != 2 || emb.cols() != c.dim || emb.rows() != c.vocab)
        throw Error(ErrorKind::InvalidInput, where + ": tensor '" + emb.name + "' has shape " +
                                                 shapeToString(emb.shape) + ", the configuration says [" +
                                                 std::to_string(c.vocab) + ", " + std::to_string(c.dim) + "]");
    if (values && c.bos >= c.vocab)
        badValue(src, bosKey, (*values)[bosKey],
                 "a token id of the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
    return c;
}

std::string_view slotName(LinearSlot slot) noexcept
{
    static constexpr std::string_view names[kLinearSlots] = {"q", "k", "v", "o", "gate", "up", "down"};
    return names[static_cast<int>(slot)];
}

// ---------------------------------------------------------------------------------------
// Linear layers

namespace {

class DenseLinear final : public Linear {
public:
    explicit DenseLinear(RowMatrix W) : m_w(std::move(W)) {}
    int64_t rows() const noexcept override { return m_w.rows(); }
    int64_t cols() const noexcept override { return m_w.cols(); }

    void forward(const float* X, int64_t T, float* Y) const override
    {
        using ConstMap = Eigen::Map<const RowMatrix>;
        using Map = Eigen::Map<RowMatrix>;
        if (T == 1 && m_w.size() >= (1 << 18)) {
            // One token: split the rows over the cores (Eigen itself runs single-threaded here).
            const Eigen::Map<const Eigen::VectorXf> x(X, m_w.cols());
            constexpr int64_t block = 256;
            tbb::parallel_for(int64_t(0), (m_w.rows() + block - 1) / block, [&](int64_t b) {
                const int64_t r0 = b * block, n = std::min(block, m_w.rows() - r0);
                Eigen::Map<Eigen::VectorXf>(Y + r0, n).noalias() = m_w.middleRows(r0, n) * x;
            });
            return;
        }
        Map(Y, T, m_w.rows()).noalias() = ConstMap(X, T, m_w.cols()) * m_w.transpose();
    }

    void row(int64_t r, float* out) const override { std::copy_n(m_w.row(r).data(), m_w.cols(), out); }
    size_t memoryBytes() const noexcept override { return static_cast<size_t>(m_w.size()) * sizeof(float); }

private:
    RowMatrix m_w;
};

class CodeDomainLinear final : public Linear {
public:
    explicit CodeDomainLinear(const QuantizedTensor& q) : m_q(q) {}
    int64_t rows() const noexcept override { return m_q.rows(); }
    int64_t cols() const noexcept override { return m_q.cols(); }
    void forward(const float* X, int64_t T, float* Y) const override
    {
        if (T == 1)
            m_q.matVec({X, static_cast<size_t>(m_q.cols())}, {Y, static_cast<size_t>(m_q.rows())});
        else
            m_q.matMul(X, T, Y);
    }
    void row(int64_t r, float* out) const override { m_q.decodeRow(r, {out, static_cast<size_t>(m_q.cols())}); }
    size_t memoryBytes() const noexcept override { return m_q.memoryBytes(); }

private:
    QuantizedLinear m_q;
};

} // namespace

std::unique_ptr<Linear> makeDenseLinear(RowMatrix W) { return std::make_unique<DenseLinear>(std::move(W)); }

std::unique_ptr<Linear> makeQuantizedLinear(const QuantizedTensor& q) { return std::make_unique<CodeDomainLinear>(q); }

size_t LlamaModel::memoryBytes() const noexcept
{
    size_t bytes = embedding ? embedding->memoryBytes() : 0;
    if (output)
        bytes += output->memoryBytes();
    for (const LlamaLayer& l : layers)
        for (const auto& lin : l.linear)
            bytes += lin ? lin->memoryBytes() : 0;
    return bytes;
}

// ---------------------------------------------------------------------------------------
// Loading

namespace {

std::vector<float> readVector(const ModelReader& reader, size_t index, int64_t expected)
{
    const TensorInfo& t = reader.tensors()[index];
    if (t.numel() != expected)
        throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + t.name + "' has shape " +
                                                 shapeToString(t.shape) + ", expected " + std::to_string(expected) +
                                                 " values");
    std::vector<float> v(static_cast<size_t>(expected));
    reader.readFloat(index, v);
    reader.release(index);
    return v;
}

std::unique_ptr<Linear> readLinear(const ModelReader& reader, size_t index, int64_t rows, int64_t cols,
                                   const LoadOptions& options)
{
    const TensorInfo& t = reader.tensors()[index];
    if (t.rows() != rows || t.cols() != cols || t.shape.size() != 2)
        throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + t.name + "' has shape " +
                                                 shapeToString(t.shape) + ", the configuration says [" +
                                                 std::to_string(rows) + ", " + std::to_string(cols) + "]");
    if (!options.decodeQuantized)
        if (std::optional<QuantizedTensor> q = quantizedTensorOf(reader, index))
            return makeQuantizedLinear(*q);
    RowMatrix W(rows, cols);
    reader.readFloat(index, {W.data(), static_cast<size_t>(W.size())});
    reader.release(index);
    return makeDenseLinear(std::move(W));
}

} // namespace

LlamaTensorMap llamaTensors(const ModelReader& reader, const LlamaConfig& c)
{
    const auto index = tensorIndex(reader);
    const NameScheme* s = schemeOf(index);
    if (!s)
        unsupported(reader, "no token embedding tensor under a Llama name");
    auto find = [&](const std::string& name) -> size_t {
        auto it = index.find(name);
        if (it == index.end())
            throw Error(ErrorKind::InvalidInput,
                        modelLabel(reader) + ": tensor '" + name + "' is missing (a Llama model needs it)");
        return it->second;
    };
    LlamaTensorMap map;
    map.embedding = find(s->embedding);
    if (index.count(s->output))
        map.output = find(s->output);
    map.finalNorm = find(s->finalNorm);
    for (int l = 0; l < c.layers; ++l) {
        const std::string prefix = s->layerPrefix + std::to_string(l) + ".";
        std::array<size_t, kLinearSlots> slots{};
        for (int k = 0; k < kLinearSlots; ++k)
            slots[static_cast<size_t>(k)] = find(prefix + s->slots[k]);
        map.linear.push_back(slots);
        map.attnNorm.push_back(find(prefix + s->attnNorm));
        map.ffnNorm.push_back(find(prefix + s->ffnNorm));
    }
    return map;
}

LlamaLayer loadLlamaLayer(const ModelReader& reader, const LlamaConfig& c, const LlamaTensorMap& map, int l,
                          const LoadOptions& options)
{
    const int64_t shapes[kLinearSlots][2] = {{c.dim, c.dim},      {c.kvDim(), c.dim},   {c.kvDim(), c.dim},
                                             {c.dim, c.dim},      {c.hiddenDim, c.dim}, {c.hiddenDim, c.dim},
                                             {c.dim, c.hiddenDim}};
    LlamaLayer layer;
    const auto& slots = map.linear[static_cast<size_t>(l)];
    for (int k = 0; k < kLinearSlots; ++k)
        layer.linear[k] = readLinear(reader, slots[static_cast<size_t>(k)], shapes[k][0], shapes[k][1], options);
    layer.attnNorm = readVector(reader, map.attnNorm[static_cast<size_t>(l)], c.dim);
    layer.ffnNorm = readVector(reader, map.ffnNorm[static_cast<size_t>(l)], c.dim);
    return layer;
}

LlamaModel loadLlama(const ModelReader& reader, const LoadOptions& options)
{
    LlamaModel m;
    m.config = llamaConfig(reader);
    const LlamaConfig& c = m.config;
    const LlamaTensorMap map = llamaTensors(reader, c);
    m.embeddingTensor = map.embedding;
    m.embedding = readLinear(reader, map.embedding, c.vocab, c.dim, options);
    m.outputTensor = map.output.value_or(map.embedding);
    if (map.output)
        m.output = readLinear(reader, *map.output, c.vocab, c.dim, options);
    m.finalNorm = readVector(reader, map.finalNorm, c.dim);
    m.layerTensor = map.linear;
    for (int l = 0; l < c.layers; ++l)
        m.layers.push_back(loadLlamaLayer(reader, c, map, l, options));
    return m;
}

// ---------------------------------------------------------------------------------------
// Forward

KvCache::KvCache(const LlamaConfig& c, int64_t maxSeq) : capacity(maxSeq > 0 ? maxSeq : c.maxSeq)
{
    const size_t n = static_cast<size_t>(c.layers) * static_cast<size_t>(capacity) * static_cast<size_t>(c.kvDim());
    k.assign(n, 0.0f);
    v.assign(n, 0.0f);
}

namespace {

// Rotates each head of `x` (T rows of nHeads * headDim) for positions pos0 + t.
void rope(float* x, int64_t T, int nHeads, int headDim, int64_t pos0, const LlamaConfig& c)
{
    const int half = headDim / 2;
    std::vector<double> freq(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i)
        freq[static_cast<size_t>(i)] = std::pow(double(c.ropeTheta), -2.0 * i / headDim);
    std::vector<float> cosv(static_cast<size_t>(half)), sinv(static_cast<size_t>(half));
    for (int64_t t = 0; t < T; ++t) {
        const double pos = double(pos0 + t);
        for (int i = 0; i < half; ++i) {
            const double angle = pos * freq[static_cast<size_t>(i)];
            cosv[static_cast<size_t>(i)] = static_cast<float>(std::cos(angle));
            sinv[static_cast<size_t>(i)] = static_cast<float>(std::sin(angle));
        }
        for (int h = 0; h < nHeads; ++h) {
            float* v = x + (t * nHeads + h) * headDim;
            for (int i = 0; i < half; ++i) {
                const int a = c.ropeHalves ? i : 2 * i;
                const int b = c.ropeHalves ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                const float cs = cosv[static_cast<size_t>(i)], sn = sinv[static_cast<size_t>(i)];
                v[a] = x0 * cs - x1 * sn;
                v[b] = x0 * sn + x1 * cs;
            }
        }
    }
}

} // namespace

void rmsNorm(const float* x, const std::vector<float>& w, float eps, int64_t T, int64_t dim, float* out)
{
    for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; ++i)
            ss += double(xt[i]) * xt[i];
        const float inv = 1.0f / std::sqrt(static_cast<float>(ss / double(dim)) + eps);
        for (int64_t i = 0; i < dim; ++i)
            out[t * dim + i] = xt[i] * inv * w[static_cast<size_t>(i)];
    }
}

void embedTokens(const LlamaModel& model, std::span<const int32_t> tokens, float* H)
{
    const int64_t dim = model.config.dim;
    for (size_t t = 0; t < tokens.size(); ++t) {
        if (tokens[t] < 0 || tokens[t] >= model.config.vocab)
            throw Error(ErrorKind::InvalidArgument, "token id " + std::to_string(tokens[t]) +
                                                        " is outside the vocabulary (0.." +
                                                        std::to_string(model.config.vocab - 1) + ")");
        model.embedding->row(tokens[t], H + static_cast<int64_t>(t) * dim);
    }
}

void forwardLayer(const LlamaModel& model, int layerIndex, float* H, int64_t T, KvCache& cache,
                  const InputObserver* observer)
{
    const LlamaConfig& c = model.config;
    const LlamaLayer& layer = model.layers[static_cast<size_t>(layerIndex)];
    const int64_t dim = c.dim, kvDim = c.kvDim(), hd = c.headDim(), hidden = c.hiddenDim;
    const int64_t pos0 = cache.pos;
    if (pos0 + T > cache.capacity)
        throw Error(ErrorKind::InvalidArgument, "the context is full (" + std::to_string(cache.capacity) +
                                                    " positions); use a shorter text or a larger context");

    std::vector<float> xn(static_cast<size_t>(T * dim)), q(static_cast<size_t>(T * dim)),
        att(static_cast<size_t>(T * dim)), tmp(static_cast<size_t>(T * dim));
    rmsNorm(H, layer.attnNorm, c.normEps, T, dim, xn.data());
    if (observer)
        (*observer)(layerIndex, LinearInput::Attention, xn.data(), T, dim);

    float* kc = cache.k.data() + static_cast<size_t>(layerIndex) * static_cast<size_t>(cache.capacity * kvDim);
    float* vc = cache.v.data() + static_cast<size_t>(layerIndex) * static_cast<size_t>(cache.capacity * kvDim);
    layer.at(LinearSlot::Q).forward(xn.data(), T, q.data());
    layer.at(LinearSlot::K).forward(xn.data(), T, kc + pos0 * kvDim);
    layer.at(LinearSlot::V).forward(xn.data(), T, vc + pos0 * kvDim);
    rope(q.data(), T, c.heads, static_cast<int>(hd), pos0, c);
    rope(kc + pos0 * kvDim, T, c.kvHeads, static_cast<int>(hd), pos0, c);

    // Causal attention, each query head reading its group's key/value head.
    const int group = c.heads / c.kvHeads;
    const float invSqrt = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<float> scores(static_cast<size_t>(pos0 + T));
    for (int64_t t = 0; t < T; ++t) {
        const int64_t span = pos0 + t + 1;
        for (int h = 0; h < c.heads; ++h) {
            const float* qh = q.data() + t * dim + h * hd;
            const int64_t kvOff = (h / group) * hd;
            float maxScore = -INFINITY;
            for (int64_t j = 0; j < span; ++j) {
                const float* kj = kc + j * kvDim + kvOff;
                float dot = 0;
                for (int64_t i = 0; i < hd; ++i)
                    dot += qh[i] * kj[i];
                scores[static_cast<size_t>(j)] = dot * invSqrt;
                maxScore = std::max(maxScore, scores[static_cast<size_t>(j)]);
            }
            double sum = 0;
            for (int64_t j = 0; j < span; ++j) {
                scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - maxScore);
                sum += scores[static_cast<size_t>(j)];
            }
            const float inv = static_cast<float>(1.0 / sum);
            float* out = att.data() + t * dim + h * hd;
            std::fill_n(out, hd, 0.0f);
            for (int64_t j = 0; j < span; ++j) {
                const float p = scores[static_cast<size_t>(j)] * inv;
                const float* vj = vc + j * kvDim + kvOff;
                for (int64_t i = 0; i < hd; ++i)
                    out[i] += p * vj[i];
            }
        }
    }
    if (observer)
        (*observer)(layerIndex, LinearInput::AttentionOutput, att.data(), T, dim);
    layer.at(LinearSlot::O).forward(att.data(), T, tmp.data());
    for (int64_t i = 0; i < T * dim; ++i)
        H[i] += tmp[static_cast<size_t>(i)];

    // SwiGLU MLP.
    rmsNorm(H, layer.ffnNorm, c.normEps, T, dim, xn.data());
    if (observer)
        (*observer)(layerIndex, LinearInput::Mlp, xn.data(), T, dim);
    std::vector<float> gate(static_cast<size_t>(T * hidden)), up(static_cast<size_t>(T * hidden));
    layer.at(LinearSlot::Gate).forward(xn.data(), T, gate.data());
    layer.at(LinearSlot::Up).forward(xn.data(), T, up.data());
    for (size_t i = 0; i < gate.size(); ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
    if (observer)
        (*observer)(layerIndex, LinearInput::MlpDown, gate.data(), T, hidden);
    layer.at(LinearSlot::Down).forward(gate.data(), T, tmp.data());
    for (int64_t i = 0; i < T * dim; ++i)
        H[i] += tmp[static_cast<size_t>(i)];
}

void outputLogits(const LlamaModel& model, const float* H, int64_t T, float* logits)
{
    const int64_t dim = model.config.dim;
    std::vector<float> xn(static_cast<size_t>(T * dim));
    rmsNorm(H, model.finalNorm, model.config.normEps, T, dim, xn.data());
    model.head().forward(xn.data(), T, logits);
}

void forward(const LlamaModel& model, KvCache& cache, std::span<const int32_t> tokens, float* logits,
             const InputObserver* observer)
{
    const int64_t T = static_cast<int64_t>(tokens.size());
    if (T == 0)
        return;
    std::vector<float> H(static_cast<size_t>(T * model.config.dim));
    embedTokens(model, tokens, H.data());
    for (int l = 0; l < model.config.layers; ++l)
        forwardLayer(model, l, H.data(), T, cache, observer);
    cache.pos += T;
    if (logits)
        outputLogits(model, H.data(), T, logits);
}

} // namespace novaq
