#include "novaq/runtime/llama.h"

#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/novaq_model_reader.h"
#include "novaq/io/error.h"
#include "novaq/runtime/quantized_linear.h"
#include "novaq/tensor/dense.h"
#include "novaq/tensor/dtype.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <thread>

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

std::map<std::string, size_t> tensorIndex(const ModelReader& reader)
{
    std::map<std::string, size_t> index;
    const auto& tensors = reader.tensors();
    for (size_t i = 0; i < tensors.size(); ++i)
        index.emplace(tensors[i].name, i);
    return index;
}

std::string modelLabel(const ModelReader& reader)
{
    return reader.files().empty() ? std::string("the model") : reader.files().front().string();
}

[[noreturn]] void unsupported(const ModelReader& reader, const std::string& why)
{
    throw Error(ErrorKind::Unsupported,
                modelLabel(reader) + ": " + why + ". Evaluation, generation and calibration run the architectures " +
                    supportedArchitectureList() + "; compressing this model without --calibration still works");
}

// The layout of the row whose token-embedding name the file has.
const Layout* layoutOf(const Architecture& arch, const std::map<std::string, size_t>& index)
{
    for (const Layout& l : arch.layouts)
        if (l.name && index.count(l.names.embedding))
            return &l;
    return nullptr;
}

std::string embeddingNames(const Architecture& arch)
{
    std::string out;
    for (const Layout& l : arch.layouts)
        if (l.name)
            out += std::string(out.empty() ? "" : " or ") + l.names.embedding;
    return out;
}

// ---------------------------------------------------------------------------------------
// Rotary embeddings: the angle per position of each rotated pair.

std::vector<double> baseFrequencies(double theta, int rotDims)
{
    std::vector<double> f(static_cast<size_t>(rotDims / 2));
    for (int i = 0; i < rotDims / 2; ++i)
        f[static_cast<size_t>(i)] = std::pow(theta, -2.0 * i / rotDims);
    return f;
}

// Llama 3.1's rule (Meta's reference code and transformers' "llama3" rope type): long
// wavelengths are divided by `factor`, short ones kept, the band between blended.
void llama3Scaling(std::vector<double>& freq, double factor, double lowFactor, double highFactor, double original)
{
    const double lowWavelen = original / lowFactor, highWavelen = original / highFactor;
    for (double& f : freq) {
        const double wavelen = 2 * M_PI / f;
        if (wavelen < highWavelen)
            continue;
        if (wavelen > lowWavelen) {
            f /= factor;
            continue;
        }
        const double smooth = (original / wavelen - lowFactor) / (highFactor - lowFactor);
        f = (1 - smooth) * f / factor + smooth * f;
    }
}

// YaRN (Peng et al. 2023, as transformers' "yarn" rope type computes it): dimensions that
// turn fewer than beta_slow times over the original context are interpolated (divided by
// factor), those turning more than beta_fast times kept, a linear ramp between; the
// attention is sharpened by 0.1 ln(factor) + 1 applied to cos and sin.
void yarnScaling(std::vector<double>& freq, double theta, int rotDims, double factor, double original, double betaFast,
                 double betaSlow)
{
    auto correctionDim = [&](double rotations) {
        return rotDims * std::log(original / (rotations * 2 * M_PI)) / (2 * std::log(theta));
    };
    const double low = std::max(0.0, std::floor(correctionDim(betaFast)));
    double high = std::min(double(rotDims - 1), std::ceil(correctionDim(betaSlow)));
    if (high == low)
        high += 0.001;
    for (size_t i = 0; i < freq.size(); ++i) {
        const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1 - ramp;
        freq[i] = freq[i] / factor * (1 - extrapolation) + freq[i] * extrapolation;
    }
}

// Phi-3's LongRoPE: each frequency divided by its own factor.
std::vector<double> divided(std::vector<double> freq, const std::vector<double>& factors)
{
    for (size_t i = 0; i < freq.size(); ++i)
        freq[i] /= factors[i];
    return freq;
}

std::vector<double> factorList(const json& scaling, const char* key, size_t expected, const ConfigSource& src)
{
    const json* v = member(scaling, key);
    if (!v || !v->is_array() || v->size() != expected)
        throw Error(ErrorKind::InvalidInput, src.where() + " rope_scaling." + key + " must be a list of " +
                                                 std::to_string(expected) +
                                                 " numbers (one per rotated pair); fix the model's configuration");
    std::vector<double> out;
    for (const json& x : *v) {
        if (!x.is_number() || !(x.get<double>() > 0) || !std::isfinite(x.get<double>()))
            throw Error(ErrorKind::InvalidInput, src.where() + " rope_scaling." + key + " holds " + valueText(x) +
                                                     ", not a finite number > 0; fix the model's configuration");
        out.push_back(x.get<double>());
    }
    return out;
}

double scalingNumber(const json& scaling, const char* key, double fallback, const ConfigSource& src)
{
    const std::optional<double> v = number(scaling, key, src);
    if (!v)
        return fallback;
    if (!(*v > 0) || !std::isfinite(*v))
        badValue(src, (std::string("rope_scaling.") + key).c_str(), *member(scaling, key), "a finite number > 0");
    return *v;
}

// config.json rope_scaling (transformers' rope types) into the frequency tables.
void hfRopeScaling(const ModelReader& reader, LlamaConfig& c, const json& config, const ConfigSource& src)
{
    c.ropeFreq = baseFrequencies(c.ropeTheta, c.rotaryDims());
    const json* scaling = member(config, "rope_scaling");
    if (!scaling)
        return;
    if (!scaling->is_object())
        badValue(src, "rope_scaling", *scaling, "an object");
    std::string type;
    for (const char* key : {"rope_type", "type"})
        if (const json* t = member(*scaling, key); t && t->is_string())
            type = t->get<std::string>();
    const double original =
        scalingNumber(*scaling, "original_max_position_embeddings",
                      number(config, "original_max_position_embeddings", src).value_or(double(c.maxSeq)), src);
    if (type == "default" || type.empty())
        return;
    c.ropeScaling = type;
    if (type == "linear") {
        const double factor = scalingNumber(*scaling, "factor", 1, src);
        for (double& f : c.ropeFreq)
            f /= factor;
    } else if (type == "llama3") {
        llama3Scaling(c.ropeFreq, scalingNumber(*scaling, "factor", 8, src),
                      scalingNumber(*scaling, "low_freq_factor", 1, src),
                      scalingNumber(*scaling, "high_freq_factor", 4, src), original);
    } else if (type == "yarn") {
        const double factor = scalingNumber(*scaling, "factor", 1, src);
        yarnScaling(c.ropeFreq, c.ropeTheta, c.rotaryDims(), factor, original,
                    scalingNumber(*scaling, "beta_fast", 32, src), scalingNumber(*scaling, "beta_slow", 1, src));
        c.ropeAttnFactor = static_cast<float>(
            scalingNumber(*scaling, "attention_factor", factor > 1 ? 0.1 * std::log(factor) + 1 : 1.0, src));
    } else if (type == "longrope" || type == "su") {
        c.ropeScaling = "longrope";
        const size_t pairs = c.ropeFreq.size();
        const std::vector<double> shortF = factorList(*scaling, "short_factor", pairs, src);
        const std::vector<double> longF = factorList(*scaling, "long_factor", pairs, src);
        const std::vector<double> base = c.ropeFreq;
        c.ropeFreq = divided(base, shortF);
        c.ropeFreqLong = divided(base, longF);
        c.ropeLongFrom = static_cast<int64_t>(original);
        const double factor = double(c.maxSeq) / original;
        c.ropeAttnFactor = static_cast<float>(
            scalingNumber(*scaling, "attention_factor",
                          factor > 1 ? std::sqrt(1 + std::log(factor) / std::log(original)) : 1.0, src));
    } else {
        unsupported(reader, "RoPE scaling type '" + type + "' (config.json rope_scaling) is not implemented");
    }
}

std::string stringField(const json& object, const char* key)
{
    const json* v = member(object, key);
    return v && v->is_string() ? v->get<std::string>() : std::string();
}

// The token ids of a configuration: a number, or (eos_token_id of newer models) a list,
// which we leave to the tokenizer.
void tokenIds(LlamaConfig& c, const json& config, const ConfigSource& src)
{
    if (const json* v = member(config, "bos_token_id"); v && !v->is_array())
        c.bos = *optionalInt(config, "bos_token_id", src, 0, kMaxInt);
    if (const json* v = member(config, "eos_token_id"); v && !v->is_array())
        c.eos = *optionalInt(config, "eos_token_id", src, 0, kMaxInt);
}

// Which layers are local, from config.json: `layer_types` when given, else the row's rule.
void windowLayers(LlamaConfig& c, const json* config, int pattern, const ConfigSource& src)
{
    c.localLayer.assign(static_cast<size_t>(c.layers), false);
    if (c.window <= 0)
        return;
    if (const json* types = config ? member(*config, "layer_types") : nullptr) {
        if (!types->is_array() || types->size() != static_cast<size_t>(c.layers))
            throw Error(ErrorKind::InvalidInput, src.where() + " field 'layer_types' must list one type per layer (" +
                                                     std::to_string(c.layers) + "); fix the model's configuration");
        for (size_t l = 0; l < types->size(); ++l)
            c.localLayer[l] = (*types)[l] == "sliding_attention";
        return;
    }
    for (int l = 0; l < c.layers; ++l) {
        switch (c.arch->window) {
        case WindowLayers::None:
            break;
        case WindowLayers::All:
            c.localLayer[static_cast<size_t>(l)] = true;
            break;
        case WindowLayers::EvenLocal:
            c.localLayer[static_cast<size_t>(l)] = l % 2 == 0;
            break;
        case WindowLayers::EveryNthGlobal:
            c.localLayer[static_cast<size_t>(l)] = (l + 1) % pattern != 0;
            break;
        }
    }
}

// Gemma multiplies the embedding by sqrt(hidden) in the hidden states' dtype: transformers
// rounds the factor to bfloat16 / float16 for such checkpoints; llama.cpp uses float.
float gemmaEmbedScale(int dim, DType dtype)
{
    const float s = std::sqrt(static_cast<float>(dim));
    if (dtype == DType::BF16)
        return bf16ToFloat(floatToBf16(s));
    if (dtype == DType::F16)
        return halfToFloat(floatToHalf(s));
    return s;
}

// shape: long on purpose: one field after another of config.json, each checked where read.
LlamaConfig configFromHf(const ModelReader& reader, const json& root, const std::string& where)
{
    const json* config = &root;
    std::string type = stringField(root, "model_type");
    if (type.empty())
        type = reader.architecture();
    if (const json* text = member(root, "text_config"); text && text->is_object())
        config = text; // multimodal wrappers (Gemma 3): the language model's own configuration
    const Architecture* arch = architectureForModelType(type);
    if (!arch)
        unsupported(reader, "architecture '" + type + "' (config.json model_type) is not supported for evaluation");
    const ConfigSource src{where, "config.json", "field"};
    LlamaConfig c;
    c.arch = arch;
    c.dim = requiredInt(*config, "hidden_size", src);
    c.hiddenDim = requiredInt(*config, "intermediate_size", src);
    c.layers = requiredInt(*config, "num_hidden_layers", src);
    c.heads = requiredInt(*config, "num_attention_heads", src);
    c.kvHeads = optionalInt(*config, "num_key_value_heads", src, 1, kMaxDimension).value_or(c.heads);
    c.vocab = requiredInt(*config, "vocab_size", src);
    c.maxSeq = optionalInt(*config, "max_position_embeddings", src, 1, kMaxInt).value_or(c.maxSeq);
    c.normEps = positiveFloat(*config, "rms_norm_eps", src).value_or(c.normEps);
    c.ropeTheta = positiveFloat(*config, "rope_theta", src).value_or(c.ropeTheta);
    c.headSize = optionalInt(*config, "head_dim", src, 1, kMaxDimension).value_or(0);
    tokenIds(c, root, src);
    if (c.bos < 0 && c.eos < 0)
        tokenIds(c, *config, src);

    if (const std::optional<double> partial = number(*config, "partial_rotary_factor", src)) {
        if (!(*partial > 0 && *partial <= 1))
            badValue(src, "partial_rotary_factor", *member(*config, "partial_rotary_factor"), "a number in (0, 1]");
        c.ropeDims = static_cast<int>(c.dim / c.heads * *partial);
        if (c.headSize > 0)
            c.ropeDims = static_cast<int>(c.headSize * *partial);
    }
    const std::string act = !stringField(*config, "hidden_activation").empty()
                                ? stringField(*config, "hidden_activation")
                                : stringField(*config, "hidden_act");
    c.activation = arch->activation;
    if (arch->activation == MlpActivation::SiLU && !act.empty() && act != "silu" && act != "swish")
        unsupported(reader,
                    "the MLP activation '" + act + "' (config.json hidden_act) is not implemented for " + arch->name);

    // Sliding windows: Mistral and Phi-3 on every layer when the config sets one, Gemma 2/3
    // on their local layers; Qwen2's optional window (use_sliding_window) is not implemented.
    if (arch->window != WindowLayers::None)
        c.window = optionalInt(*config, "sliding_window", src, 1, kMaxInt).value_or(0);
    if (const json* use = member(*config, "use_sliding_window"); use && use->is_boolean() && use->get<bool>())
        unsupported(reader, "Qwen2's sliding window (config.json use_sliding_window true) is not implemented");
    if (c.window >= c.maxSeq && arch->window == WindowLayers::All)
        c.window = 0; // a window as long as the context is none
    const int pattern = optionalInt(*config, "sliding_window_pattern", src, 1, kMaxDimension).value_or(6);

    if (const std::optional<float> s = positiveFloat(*config, "query_pre_attn_scalar", src))
        c.attnScale = 1.0f / std::sqrt(*s);
    c.attnSoftcap = positiveFloat(*config, "attn_logit_softcapping", src).value_or(0.0f);
    c.finalSoftcap = positiveFloat(*config, "final_logit_softcapping", src).value_or(0.0f);

    const auto index = tensorIndex(reader);
    c.layout = layoutOf(*arch, index);
    if (!c.layout)
        unsupported(reader, std::string("no token embedding tensor under the names of ") + arch->name + " (" +
                                embeddingNames(*arch) + ")");
    c.ropeHalves = c.layout->rope == RopeLayout::Halves;
    c.normPlusOne = c.layout->normPlusOne;
    c.ropeDims = c.ropeDims == c.headDim() ? 0 : c.ropeDims;
    hfRopeScaling(reader, c, *config, src);
    if (arch->window == WindowLayers::EveryNthGlobal) {
        c.ropeThetaLocal = positiveFloat(*config, "rope_local_base_freq", src).value_or(10000.0f);
        c.ropeFreqLocal = baseFrequencies(c.ropeThetaLocal, c.rotaryDims());
    }
    windowLayers(c, config, pattern, src);
    if (arch->embeddingScale)
        c.embedScale = gemmaEmbedScale(c.dim, reader.tensors()[index.at(c.layout->names.embedding)].dtype);
    return c;
}

// The frequencies of a GGUF file: freq_base, the linear or YaRN scaling of its metadata, and
// the per-pair divisors llama.cpp's converter stores as tensors (Llama 3.1's rope_freqs,
// Phi-3's rope_factors_short / rope_factors_long).
void ggufRope(const ModelReader& reader, LlamaConfig& c, const json& meta, const std::string& prefix,
              const std::map<std::string, size_t>& index, const ConfigSource& src)
{
    c.ropeFreq = baseFrequencies(c.ropeTheta, c.rotaryDims());
    const size_t pairs = c.ropeFreq.size();
    auto factors = [&](const char* name) -> std::optional<std::vector<double>> {
        auto it = index.find(name);
        if (it == index.end())
            return std::nullopt;
        const TensorInfo& t = reader.tensors()[it->second];
        // One divisor per rotated pair; converters of partial-rotary models (Phi-4-mini) may
        // pad to head_dim / 2, of which llama.cpp reads the first rotated pairs only.
        const auto headPairs = static_cast<int64_t>(c.headDim() / 2);
        if (t.numel() != static_cast<int64_t>(pairs) && t.numel() != headPairs)
            throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + t.name + "' has " +
                                                     std::to_string(t.numel()) + " values, expected " +
                                                     std::to_string(pairs) + " (one per rotated pair)");
        std::vector<float> v(static_cast<size_t>(t.numel()));
        reader.readFloat(it->second, v);
        v.resize(pairs);
        std::vector<double> out;
        for (float x : v) {
            if (!(x > 0) || !std::isfinite(x))
                throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + t.name + "' holds " +
                                                         std::to_string(x) + ", not a finite number > 0");
            out.push_back(x);
        }
        return out;
    };
    const std::string type = stringField(meta, (prefix + "rope.scaling.type").c_str());
    const double factor = positiveFloat(meta, (prefix + "rope.scaling.factor").c_str(), src).value_or(1.0f);
    const double original =
        optionalInt(meta, (prefix + "rope.scaling.original_context_length").c_str(), src, 1, kMaxInt)
            .value_or(c.maxSeq);
    if (type == "linear" && factor != 1) {
        c.ropeScaling = "linear";
        for (double& f : c.ropeFreq)
            f /= factor;
    } else if (type == "yarn") {
        c.ropeScaling = "yarn";
        yarnScaling(c.ropeFreq, c.ropeTheta, c.rotaryDims(), factor, original, 32, 1);
        c.ropeAttnFactor = static_cast<float>(factor > 1 ? 0.1 * std::log(factor) + 1 : 1.0);
    } else if (!type.empty() && type != "none") {
        unsupported(reader, "RoPE scaling type '" + type + "' (GGUF " + prefix + "rope.scaling.type)");
    }
    if (auto f = factors("rope_freqs.weight")) {
        c.ropeScaling = "llama3";
        c.ropeFreq = divided(c.ropeFreq, *f);
    }
    auto longF = factors("rope_factors_long.weight");
    auto shortF = factors("rope_factors_short.weight");
    if (longF && shortF) {
        c.ropeScaling = "longrope";
        const std::vector<double> base = c.ropeFreq;
        c.ropeFreq = divided(base, *shortF);
        c.ropeFreqLong = divided(base, *longF);
        c.ropeLongFrom = static_cast<int64_t>(original);
        const double scale = double(c.maxSeq) / original;
        c.ropeAttnFactor =
            positiveFloat(meta, (prefix + "rope.scaling.attn_factor").c_str(), src)
                .value_or(static_cast<float>(scale > 1 ? std::sqrt(1 + std::log(scale) / std::log(original)) : 1.0));
    }
}

// shape: long on purpose: one metadata key after another, each checked where read.
LlamaConfig configFromGguf(const ModelReader& reader, const json& meta, const std::string& where,
                           const std::string& ggufArch)
{
    const Architecture* arch = architectureForGguf(ggufArch);
    if (!arch)
        unsupported(reader, "GGUF architecture '" + ggufArch + "' is not supported for evaluation");
    const ConfigSource src{where, "GGUF metadata", "key"};
    const std::string p = ggufArch + ".";
    auto key = [&](const char* k) { return p + k; };
    LlamaConfig c;
    c.arch = arch;
    c.dim = requiredInt(meta, key("embedding_length").c_str(), src);
    c.hiddenDim = requiredInt(meta, key("feed_forward_length").c_str(), src);
    c.layers = requiredInt(meta, key("block_count").c_str(), src);
    c.heads = requiredInt(meta, key("attention.head_count").c_str(), src);
    c.kvHeads = optionalInt(meta, key("attention.head_count_kv").c_str(), src, 1, kMaxDimension).value_or(c.heads);
    c.maxSeq = optionalInt(meta, key("context_length").c_str(), src, 1, kMaxInt).value_or(c.maxSeq);
    c.normEps = positiveFloat(meta, key("attention.layer_norm_rms_epsilon").c_str(), src).value_or(c.normEps);
    c.ropeTheta = positiveFloat(meta, key("rope.freq_base").c_str(), src).value_or(c.ropeTheta);
    c.headSize = optionalInt(meta, key("attention.key_length").c_str(), src, 1, kMaxDimension).value_or(0);
    c.bos = optionalInt(meta, "tokenizer.ggml.bos_token_id", src, 0, kMaxInt).value_or(c.bos);
    c.eos = optionalInt(meta, "tokenizer.ggml.eos_token_id", src, 0, kMaxInt).value_or(c.eos);
    if (auto v = optionalInt(meta, key("attention.value_length").c_str(), src, 1, kMaxDimension);
        v && *v != c.headDim())
        unsupported(reader, "value heads of another size than the key heads (" + key("attention.value_length") + ")");
    c.ropeDims = optionalInt(meta, key("rope.dimension_count").c_str(), src, 1, kMaxDimension).value_or(0);
    c.activation = arch->activation;
    if (arch->window != WindowLayers::None)
        c.window = optionalInt(meta, key("attention.sliding_window").c_str(), src, 1, kMaxInt).value_or(0);
    if (c.window >= c.maxSeq && arch->window == WindowLayers::All)
        c.window = 0;
    c.attnSoftcap = positiveFloat(meta, key("attn_logit_softcapping").c_str(), src).value_or(0.0f);
    c.finalSoftcap = positiveFloat(meta, key("final_logit_softcapping").c_str(), src).value_or(0.0f);
    const int pattern =
        optionalInt(meta, key("attention.sliding_window_pattern").c_str(), src, 1, kMaxDimension).value_or(6);

    const auto index = tensorIndex(reader);
    c.layout = layoutOf(*arch, index);
    if (!c.layout)
        unsupported(reader, std::string("no token embedding tensor under the names of ") + arch->name + " (" +
                                embeddingNames(*arch) + ")");
    c.ropeHalves = c.layout->rope == RopeLayout::Halves;
    c.normPlusOne = c.layout->normPlusOne;
    if (c.ropeDims == c.headDim())
        c.ropeDims = 0;
    ggufRope(reader, c, meta, p, index, src);
    if (arch->window == WindowLayers::EveryNthGlobal) {
        c.ropeThetaLocal = positiveFloat(meta, key("rope.freq_base_swa").c_str(), src).value_or(10000.0f);
        c.ropeFreqLocal = baseFrequencies(c.ropeThetaLocal, c.rotaryDims());
    }
    windowLayers(c, nullptr, pattern, src);
    if (arch->embeddingScale)
        c.embedScale = std::sqrt(static_cast<float>(c.dim));
    // Gemma 2/3 GGUFs carry no query_pre_attn_scalar: llama.cpp takes 1/sqrt(hidden / heads)
    // for the 27B models (46 layers for Gemma 2, 62 for Gemma 3; their scalar is 144, not the
    // head size) and 1/sqrt(head_dim) for the others. So do we.
    if ((ggufArch == "gemma2" && c.layers == 46) || (ggufArch == "gemma3" && c.layers == 62))
        c.attnScale = 1.0f / std::sqrt(static_cast<float>(c.dim) / static_cast<float>(c.heads));
    return c;
}

LlamaConfig configFromLlama2c(const ModelReader& reader, const json& meta, const std::string& where)
{
    const ConfigSource src{where, "llama.c header", "field"};
    LlamaConfig c;
    c.arch = architectureForModelType("llama");
    c.dim = requiredInt(meta, "dim", src);
    c.hiddenDim = requiredInt(meta, "hidden_dim", src);
    c.layers = requiredInt(meta, "n_layers", src);
    c.heads = requiredInt(meta, "n_heads", src);
    c.kvHeads = requiredInt(meta, "n_kv_heads", src);
    c.vocab = requiredInt(meta, "vocab_size", src);
    c.maxSeq = requiredInt(meta, "seq_len", src);
    c.bos = 1;
    c.eos = 2;
    c.layout = layoutOf(*c.arch, tensorIndex(reader));
    if (!c.layout)
        unsupported(reader, "no token embedding tensor under a Llama name (" + embeddingNames(*c.arch) + ")");
    c.ropeHalves = c.layout->rope == RopeLayout::Halves;
    c.ropeFreq = baseFrequencies(c.ropeTheta, c.rotaryDims());
    c.localLayer.assign(static_cast<size_t>(c.layers), false);
    return c;
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
    const char* file = "config.json";
    std::string dimKey = "hidden_size", headsKey = "num_attention_heads", kvKey = "num_key_value_heads";
    std::string bosKey = "bos_token_id";
    const json* values = nullptr; // where bos_token_id came from
    if (config && config->is_object()) {
        c = configFromHf(reader, *config, where);
        values = config;
        if (const json* text = member(*config, "text_config"); text && !member(*config, "bos_token_id"))
            values = text;
    } else if (fmeta &&
               (member(*fmeta, "general.architecture") || member(*fmeta, (arch + ".embedding_length").c_str()))) {
        const std::string ggufArch =
            member(*fmeta, "general.architecture") ? stringField(*fmeta, "general.architecture") : arch;
        c = configFromGguf(reader, *fmeta, where, ggufArch);
        file = "GGUF metadata";
        dimKey = ggufArch + ".embedding_length";
        headsKey = ggufArch + ".attention.head_count";
        kvKey = ggufArch + ".attention.head_count_kv";
        bosKey = "tokenizer.ggml.bos_token_id";
        values = fmeta;
    } else if (fmeta && member(*fmeta, "n_heads") && arch == "llama") {
        c = configFromLlama2c(reader, *fmeta, where);
        file = "llama.c header";
        dimKey = "dim";
        headsKey = "n_heads";
        kvKey = "n_kv_heads";
    } else if (arch != "llama" && arch != "unknown" && !architectureForModelType(arch)) {
        unsupported(reader, "architecture '" + arch + "' is not supported for evaluation");
    } else {
        unsupported(reader, "no model configuration found (a config.json beside the weights, GGUF metadata or "
                            "a llama2.c header)");
    }
    const ConfigSource src{where, file, values == fmeta && fmeta ? "key" : "field"};
    const bool explicitHead = c.headSize > 0;
    if ((!explicitHead && c.dim % c.heads != 0) || c.heads % c.kvHeads != 0 || c.rotaryDims() % 2 != 0 ||
        c.rotaryDims() > c.headDim())
        throw Error(ErrorKind::InvalidInput, src.where() + ": inconsistent attention shape: " + headsKey + " (" +
                                                 std::to_string(c.heads) + ") must divide " + dimKey + " (" +
                                                 std::to_string(c.dim) + ") into heads of an even size, and " + kvKey +
                                                 " (" + std::to_string(c.kvHeads) + ") must divide " + headsKey +
                                                 "; fix the model's configuration");

    const auto index = tensorIndex(reader);
    const TensorInfo& emb = reader.tensors()[index.at(c.layout->names.embedding)];
    if (c.vocab == 0)
        c.vocab = static_cast<int>(emb.rows());
    if (emb.shape.size() != 2 || emb.cols() != c.dim || emb.rows() != c.vocab)
        throw Error(ErrorKind::InvalidInput, where + ": tensor '" + emb.name + "' has shape " +
                                                 shapeToString(emb.shape) + ", the configuration says [" +
                                                 std::to_string(c.vocab) + ", " + std::to_string(c.dim) + "]");
    if (values && c.bos >= c.vocab)
        badValue(src, bosKey.c_str(), (*values)[bosKey],
                 "a token id of the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
    return c;
}

nlohmann::json describeConfig(const LlamaConfig& c)
{
    int local = 0;
    for (bool b : c.localLayer)
        local += b ? 1 : 0;
    json rope = {{"layout", c.ropeHalves ? "halves" : "adjacent pairs"},
                 {"base", c.ropeTheta},
                 {"dims", c.rotaryDims()},
                 {"scaling", c.ropeScaling.empty() ? "none" : c.ropeScaling}};
    if (c.ropeAttnFactor != 1.0f)
        rope["attention_factor"] = c.ropeAttnFactor;
    if (!c.ropeFreqLocal.empty())
        rope["local_base"] = c.ropeThetaLocal;
    json out = {{"architecture", c.arch ? c.arch->name : "?"},
                {"families", c.arch ? c.arch->families : ""},
                {"layout", c.layout ? c.layout->name : "?"},
                {"layers", c.layers},
                {"hidden", c.dim},
                {"heads", c.heads},
                {"kv_heads", c.kvHeads},
                {"head_dim", c.headDim()},
                {"ffn", c.hiddenDim},
                {"vocab", c.vocab},
                {"context", c.maxSeq},
                {"activation", c.activation == MlpActivation::GeluTanh ? "GELU-tanh" : "SiLU"},
                {"rope", rope},
                {"norm_plus_one", c.normPlusOne},
                {"embedding_scale", c.embedScale},
                {"sliding_window", c.window},
                {"local_layers", local},
                {"attn_softcap", c.attnSoftcap},
                {"final_softcap", c.finalSoftcap}};
    return out;
}

std::string describeConfigText(const LlamaConfig& c)
{
    std::string s = std::string(c.arch ? c.arch->name : "?") + " (" + (c.arch ? c.arch->families : "") + "), " +
                    (c.layout ? c.layout->name : "?") + " layout: " + std::to_string(c.layers) + " layers, head " +
                    std::to_string(c.headDim()) + ", " + std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) +
                    " heads, RoPE " + (c.ropeHalves ? "halves" : "adjacent pairs");
    if (c.ropeDims > 0)
        s += " on " + std::to_string(c.ropeDims) + " dims";
    if (!c.ropeScaling.empty())
        s += " with " + c.ropeScaling + " scaling";
    s += c.activation == MlpActivation::GeluTanh ? ", GELU-tanh" : ", SiLU";
    int local = 0;
    for (bool b : c.localLayer)
        local += b ? 1 : 0;
    if (c.window > 0 && local > 0)
        s += ", window " + std::to_string(c.window) + " on " + std::to_string(local) + " of " +
             std::to_string(c.layers) + " layers";
    if (c.attnSoftcap > 0 || c.finalSoftcap > 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ", soft-cap %g/%g", double(c.attnSoftcap), double(c.finalSoftcap));
        s += buf;
    }
    return s;
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
        if (T == 1 && m_w.size() >= (1 << 18)) {
            // One token: split the rows over the cores (Eigen itself runs single-threaded here).
            constexpr int64_t block = 256;
            tbb::parallel_for(int64_t(0), (m_w.rows() + block - 1) / block, [&](int64_t b) {
                const int64_t r0 = b * block, n = std::min(block, m_w.rows() - r0);
                dense::gemv(n, m_w.cols(), m_w.data() + r0 * m_w.cols(), m_w.cols(), X, Y + r0);
            });
            return;
        }
        // The CPU's widest build of the product (tensor/dense.h): 3-5x the plain x86-64 one.
        dense::gemm(dense::Op::N, dense::Op::T, T, m_w.rows(), m_w.cols(), X, m_w.cols(), m_w.data(), m_w.cols(), Y,
                    m_w.rows(), false);
    }

    void row(int64_t r, float* out) const override { std::copy_n(m_w.row(r).data(), m_w.cols(), out); }
    size_t memoryBytes() const noexcept override { return static_cast<size_t>(m_w.size()) * sizeof(float); }

private:
    RowMatrix m_w;
};

class CodeDomainLinear final : public Linear {
public:
    CodeDomainLinear(const QuantizedTensor& q, Tables tables) : m_q(q, tables), m_config(q.config) {}
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
    const CodecConfig* quantized() const noexcept override { return &m_config; }

private:
    QuantizedLinear m_q;
    CodecConfig m_config;
};

} // namespace

std::unique_ptr<Linear> makeDenseLinear(RowMatrix W) { return std::make_unique<DenseLinear>(std::move(W)); }

std::unique_ptr<Linear> makeQuantizedLinear(const QuantizedTensor& q, Tables tables)
{
    return std::make_unique<CodeDomainLinear>(q, tables);
}

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

size_t LlamaModel::weightBytes() const noexcept
{
    auto vec = [](const std::vector<float>& v) { return v.capacity() * sizeof(float); };
    size_t bytes = memoryBytes() + vec(finalNorm);
    for (const LlamaLayer& l : layers) {
        for (const auto& b : l.bias)
            bytes += vec(b);
        bytes +=
            vec(l.attnNorm) + vec(l.ffnNorm) + vec(l.postAttnNorm) + vec(l.postFfnNorm) + vec(l.qNorm) + vec(l.kNorm);
    }
    return bytes;
}

// ---------------------------------------------------------------------------------------
// Memory held (`--fit-memory`)

uint64_t predictQuantizedLinearBytes(int64_t rows, int64_t cols, const CodecConfig& c) noexcept
{
    // As QuantizedLinear's constructor allocates them (quantized_linear.cpp).
    constexpr int64_t kInterleave = 64; // rows per code group
    const int64_t vpr = vectorsPerRow(cols, c.d);
    const int64_t entries = (int64_t(1) << c.b1) + (c.b2 > 0 ? int64_t(1) << c.b2 : 0);
    const int64_t width1 = c.b1 > 8 ? 2 : 1, width2 = c.b2 == 0 ? 0 : c.b2 > 8 ? 2 : 1;
    const int64_t slots = (rows + kInterleave - 1) / kInterleave * kInterleave * vpr;
    const int64_t books = int64_t(c.subspaces) * entries * c.d;
    // Stage-2 codes of at most 4 bits are held two per byte (CodePacking::Compact, the default).
    const int64_t codes2 = c.b2 > 0 && c.b2 <= 4 ? slots / 2 : slots * width2;
    // The codebooks and the row scales stay f16, as in the file (widened per call); the column
    // scales are f32.
    return sizeof(QuantizedLinear) + uint64_t(slots * width1 + codes2) + uint64_t(books + 2 * rows) * sizeof(uint16_t) +
           uint64_t(cols) * sizeof(float) + uint64_t(vpr) * sizeof(uint32_t);
}

uint64_t linearScratchBytes(int64_t cols, const CodecConfig* config, int64_t batch, int threads) noexcept
{
    if (!config)
        return 0;
    const auto t = static_cast<uint64_t>(std::max(threads, 1));
    const int64_t decode = QuantizedLinear::kDecodeRows;
    constexpr int64_t kTile = 32, kRowTile = 8; // the widest kernel tiles: tokens x rows
    const int64_t vpr = vectorsPerRow(cols, config->d);
    const int64_t entries = (int64_t(1) << config->b1) + (config->b2 > 0 ? int64_t(1) << config->b2 : 0);
    // The codebooks widened to f32 for the call (twice for the decoded product: both layouts).
    const uint64_t books = uint64_t(config->subspaces) * uint64_t(entries) * uint64_t(config->d) * sizeof(float);
    // A token's mat-vec: x o t padded to whole vectors and the tables (f32 at most), per thread.
    const uint64_t lookup = books + t * uint64_t(vpr * config->d + vpr * (entries + 128)) * sizeof(float);
    // The decoded product: X repacked in token tiles once, and per thread a decoded block
    // of rows (padded stride), its sums and the accumulators of every token tile.
    const int64_t tiles = (batch + kTile - 1) / kTile;
    const uint64_t decoded =
        2 * books + uint64_t(tiles * kTile * cols + batch) * sizeof(float) +
        t * uint64_t((decode + kRowTile) * (cols + 16) + tiles * (decode + kRowTile) * kTile + decode + kRowTile) *
            sizeof(float);
    return std::max(lookup, decoded);
}

uint64_t forwardScratchBytes(const LlamaConfig& c, int64_t batch, int64_t context, uint64_t linearScratch,
                             bool fusedQkv, bool fusedGateUp, int threads) noexcept
{
    // forward() holds H throughout. forwardLayer() holds xn, q, att and tmp, with the fused qkv
    // (freed before the MLP) and attend()'s scores (per thread, a block of queries against their
    // keys: kAttentionScoreFloats, or a row of keys when the context is longer) at attention time,
    // then gate and up, and the fused gate_up, in the MLP. outputLogits() holds xn and the logits
    // of the last token (the generator's one row), after the blocks have freed theirs.
    const int64_t T = batch, dim = c.dim, qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim;
    const int64_t scores = std::max<int64_t>(threads, 1) * std::max(kAttentionScoreFloats, context);
    const int64_t attention = 2 * T * dim + 2 * T * qDim + (fusedQkv ? T * (qDim + 2 * kvDim) : 0) + scores;
    const int64_t mlp = 2 * T * dim + 2 * T * qDim + 2 * T * hidden + (fusedGateUp ? 2 * T * hidden : 0);
    const int64_t output = T * dim + c.vocab;
    const int64_t floats = T * dim + std::max({attention, mlp, output});
    return uint64_t(floats) * sizeof(float) + linearScratch;
}

uint64_t forwardScratchBytes(const LlamaModel& model, int64_t batch, int64_t context, int threads) noexcept
{
    // The largest per-call scratch of the model's quantized matrices (they run one at a time).
    uint64_t linear = 0;
    for (const LlamaLayer& l : model.layers)
        for (const auto& lin : l.linear)
            if (lin && lin->quantized())
                linear = std::max(linear, linearScratchBytes(lin->cols(), lin->quantized(), batch, threads));
    for (const Linear* l : {model.embedding.get(), model.output.get()})
        if (l && l->quantized())
            linear = std::max(linear, linearScratchBytes(l->cols(), l->quantized(), batch, threads));
    const bool fusedQkv = !model.layers.empty() && model.layers.front().fusedQkv();
    const bool fusedGateUp = !model.layers.empty() && model.layers.front().fusedGateUp();
    return forwardScratchBytes(model.config, batch, context, linear, fusedQkv, fusedGateUp, threads);
}

RuntimeMemory runtimeMemory(const LlamaModel& model, const KvCache& cache, int64_t batch, int threads)
{
    if (threads <= 0)
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    RuntimeMemory m;
    m.weights = model.weightBytes();
    m.kvCache = cache.memoryBytes();
    m.scratch = forwardScratchBytes(model, batch, cache.capacity, threads);
    return m;
}

// ---------------------------------------------------------------------------------------
// Loading

namespace {

std::vector<float> readVector(const ModelReader& reader, size_t index, int64_t expected, bool plusOne = false)
{
    const TensorInfo& t = reader.tensors()[index];
    if (t.numel() != expected)
        throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + t.name + "' has shape " +
                                                 shapeToString(t.shape) + ", expected " + std::to_string(expected) +
                                                 " values");
    std::vector<float> v(static_cast<size_t>(expected));
    reader.readFloat(index, v);
    reader.release(index);
    if (plusOne) // Gemma's norms scale by 1 + w (computed in float32, as transformers does)
        for (float& x : v)
            x += 1.0f;
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
        if (std::optional<QuantizedTensor> q = quantizedTensorOf(reader, index)) {
            std::unique_ptr<Linear> linear = makeQuantizedLinear(*q, options.tables);
            // The codes now live in the linear's own layout: the file's pages of this tensor
            // leave the resident set (they stayed mapped, doubling what generating holds).
            reader.release(index);
            return linear;
        }
    RowMatrix W(rows, cols);
    reader.readFloat(index, {W.data(), static_cast<size_t>(W.size())});
    reader.release(index);
    return makeDenseLinear(std::move(W));
}

// Rows x columns of each slot's matrix; fused slots stack their parts.
std::array<std::array<int64_t, 2>, kLinearSlots> slotShapes(const LlamaConfig& c, bool fusedQkv, bool fusedGateUp)
{
    const int64_t q = fusedQkv ? c.qDim() + 2 * c.kvDim() : c.qDim();
    const int64_t ff = fusedGateUp ? 2 * int64_t(c.hiddenDim) : c.hiddenDim;
    return {{{q, c.dim},
             {c.kvDim(), c.dim},
             {c.kvDim(), c.dim},
             {c.dim, c.qDim()},
             {ff, c.dim},
             {c.hiddenDim, c.dim},
             {c.dim, c.hiddenDim}}};
}

std::string biasName(const std::string& weightName)
{
    const std::string_view suffix = ".weight";
    if (weightName.size() > suffix.size() && weightName.ends_with(suffix))
        return weightName.substr(0, weightName.size() - suffix.size()) + ".bias";
    return weightName + ".bias";
}

} // namespace

// shape: long on purpose: one lookup per tensor kind, each with its own rule.
LlamaTensorMap llamaTensors(const ModelReader& reader, const LlamaConfig& c)
{
    const auto index = tensorIndex(reader);
    if (!c.layout || !c.arch)
        internalError("llamaTensors needs a configuration from llamaConfig");
    const TensorNames& n = c.layout->names;
    auto has = [&](const std::string& name) { return index.count(name) > 0; };
    auto find = [&](const std::string& name) -> size_t {
        auto it = index.find(name);
        if (it == index.end())
            throw Error(ErrorKind::InvalidInput, modelLabel(reader) + ": tensor '" + name + "' is missing (a " +
                                                     c.arch->name + " model needs it)");
        return it->second;
    };
    auto optional = [&](const char* suffix, const std::string& prefix) -> size_t {
        return suffix ? find(prefix + suffix) : kNoTensor;
    };
    LlamaTensorMap map;
    map.embedding = find(n.embedding);
    if (has(n.output))
        map.output = find(n.output);
    map.finalNorm = find(n.finalNorm);
    const auto& tensors = reader.tensors();
    for (int l = 0; l < c.layers; ++l) {
        const std::string prefix = n.layerPrefix + std::to_string(l) + ".";
        std::array<size_t, kLinearSlots> slots;
        slots.fill(kNoTensor);
        auto slot = [&](LinearSlot s) -> size_t& { return slots[static_cast<size_t>(s)]; };
        if (n.qkv && has(prefix + n.qkv)) {
            slot(LinearSlot::Q) = find(prefix + n.qkv);
        } else {
            slot(LinearSlot::Q) = find(prefix + n.q);
            slot(LinearSlot::K) = find(prefix + n.k);
            slot(LinearSlot::V) = find(prefix + n.v);
        }
        slot(LinearSlot::O) = find(prefix + n.o);
        if (n.gateUp && has(prefix + n.gateUp)) {
            slot(LinearSlot::Gate) = find(prefix + n.gateUp);
        } else if (!has(prefix + n.gate) && has(prefix + n.up) &&
                   tensors[find(prefix + n.up)].rows() == 2 * int64_t(c.hiddenDim)) {
            // llama.cpp keeps Phi-3's gate_up_proj as ffn_up with twice the rows (gate first).
            slot(LinearSlot::Gate) = find(prefix + n.up);
        } else {
            slot(LinearSlot::Gate) = find(prefix + n.gate);
            slot(LinearSlot::Up) = find(prefix + n.up);
        }
        slot(LinearSlot::Down) = find(prefix + n.down);
        std::array<size_t, kLinearSlots> biases;
        biases.fill(kNoTensor);
        for (size_t k = 0; k < kLinearSlots; ++k)
            if (slots[k] != kNoTensor)
                if (auto it = index.find(biasName(tensors[slots[k]].name)); it != index.end())
                    biases[k] = it->second;
        map.linear.push_back(slots);
        map.bias.push_back(biases);
        map.attnNorm.push_back(find(prefix + n.attnNorm));
        map.ffnNorm.push_back(find(prefix + n.ffnNorm));
        map.postAttnNorm.push_back(optional(n.postAttnNorm, prefix));
        map.postFfnNorm.push_back(optional(n.postFfnNorm, prefix));
        map.qNorm.push_back(optional(n.qNorm, prefix));
        map.kNorm.push_back(optional(n.kNorm, prefix));
    }
    return map;
}

LlamaLayer loadLlamaLayer(const ModelReader& reader, const LlamaConfig& c, const LlamaTensorMap& map, int l,
                          const LoadOptions& options)
{
    const auto li = static_cast<size_t>(l);
    const auto& slots = map.linear[li];
    const bool fusedQkv = slots[static_cast<size_t>(LinearSlot::K)] == kNoTensor;
    const bool fusedGateUp = slots[static_cast<size_t>(LinearSlot::Up)] == kNoTensor;
    const auto shapes = slotShapes(c, fusedQkv, fusedGateUp);
    LlamaLayer layer;
    for (size_t k = 0; k < kLinearSlots; ++k) {
        if (slots[k] == kNoTensor)
            continue;
        layer.linear[k] = readLinear(reader, slots[k], shapes[k][0], shapes[k][1], options);
        if (map.bias[li][k] != kNoTensor)
            layer.bias[k] = readVector(reader, map.bias[li][k], shapes[k][0]);
    }
    const bool p1 = c.normPlusOne;
    layer.attnNorm = readVector(reader, map.attnNorm[li], c.dim, p1);
    layer.ffnNorm = readVector(reader, map.ffnNorm[li], c.dim, p1);
    if (map.postAttnNorm[li] != kNoTensor)
        layer.postAttnNorm = readVector(reader, map.postAttnNorm[li], c.dim, p1);
    if (map.postFfnNorm[li] != kNoTensor)
        layer.postFfnNorm = readVector(reader, map.postFfnNorm[li], c.dim, p1);
    if (map.qNorm[li] != kNoTensor)
        layer.qNorm = readVector(reader, map.qNorm[li], c.headDim(), p1);
    if (map.kNorm[li] != kNoTensor)
        layer.kNorm = readVector(reader, map.kNorm[li], c.headDim(), p1);
    return layer;
}

std::vector<float> readFinalNorm(const ModelReader& reader, const LlamaConfig& c, const LlamaTensorMap& map)
{
    return readVector(reader, map.finalNorm, c.dim, c.normPlusOne);
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
    m.finalNorm = readFinalNorm(reader, c, map);
    m.layerTensor = map.linear;
    // Every tensor's pages once more after each block: reading a tensor maps the cached pages
    // around the one it faults on (the kernel's fault-around, up to 64 kB), the tail of the
    // tensor released just before among them. Per tensor that is little; over the 201 tensors of
    // the 1B-class file 6 MB stayed resident while generating (and 8 MB at the end of loading).
    // A release of pages not mapped costs a system call that finds nothing (microseconds).
    const auto releaseAll = [&reader] {
        for (size_t i = 0; i < reader.tensors().size(); ++i)
            reader.release(i);
    };
    releaseAll();
    for (int l = 0; l < c.layers; ++l) {
        m.layers.push_back(loadLlamaLayer(reader, c, map, l, options));
        releaseAll();
    }
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

struct RopeTable {
    const std::vector<double>* freq;
    float scale; // cos and sin times this
};

// The frequencies a layer rotates with: local layers their own base (Gemma 3); LongRoPE's
// long factors once the context (the cache) is longer than the original one, as llama.cpp
// chooses them by context size.
RopeTable ropeTableOf(const LlamaConfig& c, int layer, int64_t capacity)
{
    const bool local = !c.localLayer.empty() && c.localLayer[static_cast<size_t>(layer)];
    if (local && !c.ropeFreqLocal.empty())
        return {&c.ropeFreqLocal, 1.0f};
    if (!c.ropeFreqLong.empty() && capacity > c.ropeLongFrom)
        return {&c.ropeFreqLong, c.ropeAttnFactor};
    return {&c.ropeFreq, c.ropeAttnFactor};
}

// cos and sin (times the table's scale) of each rotated pair at positions pos0 + t, t < T:
// [t][pair], computed once for the queries and the keys of a block.
struct RopeAngles {
    std::vector<float> cos, sin;
};
RopeAngles ropeAngles(int64_t T, int64_t pos0, const LlamaConfig& c, const RopeTable& table)
{
    const int half = c.rotaryDims() / 2;
    RopeAngles a{std::vector<float>(static_cast<size_t>(T * half)), std::vector<float>(static_cast<size_t>(T * half))};
    for (int64_t t = 0; t < T; ++t) {
        const double pos = double(pos0 + t);
        for (int i = 0; i < half; ++i) {
            const double angle = pos * (*table.freq)[static_cast<size_t>(i)];
            a.cos[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle)) * table.scale;
            a.sin[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle)) * table.scale;
        }
    }
    return a;
}

// Rotates the first rotaryDims() of each head of `x` (T rows of nHeads heads, `stride`
// floats apart) by the angles of their positions.
void rope(float* x, int64_t T, int nHeads, int64_t stride, const LlamaConfig& c, const RopeAngles& angles)
{
    const int half = c.rotaryDims() / 2;
    const int headDim = c.headDim();
    for (int64_t t = 0; t < T; ++t) {
        const float* cosv = angles.cos.data() + t * half;
        const float* sinv = angles.sin.data() + t * half;
        for (int h = 0; h < nHeads; ++h) {
            float* v = x + t * stride + int64_t(h) * headDim;
            for (int i = 0; i < half; ++i) {
                const int a = c.ropeHalves ? i : 2 * i;
                const int b = c.ropeHalves ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                const float cs = cosv[i], sn = sinv[i];
                v[a] = x0 * cs - x1 * sn;
                v[b] = x0 * sn + x1 * cs;
            }
        }
    }
}

// RMSNorm of each head (Qwen3's and Gemma 3's q/k norms), in place.
void headNorm(float* x, int64_t T, int nHeads, int64_t stride, const std::vector<float>& w, float eps)
{
    const int64_t hd = static_cast<int64_t>(w.size());
    for (int64_t t = 0; t < T; ++t)
        for (int h = 0; h < nHeads; ++h) {
            float* v = x + t * stride + h * hd;
            rmsNorm(v, w, eps, 1, hd, v);
        }
}

void addBias(float* Y, int64_t T, const std::vector<float>& b)
{
    if (b.empty())
        return;
    const int64_t n = static_cast<int64_t>(b.size());
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < n; ++i)
            Y[t * n + i] += b[static_cast<size_t>(i)];
}

float softcap(float x, float cap) { return cap * std::tanh(x / cap); }

// GELU with the tanh approximation (transformers' gelu_pytorch_tanh, llama.cpp's ggml_gelu).
float geluTanh(float x)
{
    constexpr float k = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

// y (T x rows) = linear(x) + its bias.
void project(const LlamaLayer& layer, LinearSlot s, const float* X, int64_t T, float* Y)
{
    layer.at(s).forward(X, T, Y);
    addBias(Y, T, layer.bias[static_cast<int>(s)]);
}

// Causal attention of T queries at positions pos0.. over the cache, each query head reading
// its group's key/value head; local layers see only the last `window` positions.
// Per head and block of queries two dense products (tensor/dense.h, the CPU's widest build):
// the scores S = Q K^T over the keys any query of the block sees, then, after each row's
// softmax over its own keys (the others zero), out = P V. Tasks (head, block) run in
// parallel; each computes the same numbers whatever the thread count. A task's scores take at
// most kAttentionScoreFloats (or one row of keys when the context is longer).
void attend(const LlamaConfig& c, const float* q, int64_t T, int64_t pos0, const float* kc, const float* vc,
            int64_t window, float* att)
{
    const int64_t hd = c.headDim(), qDim = c.qDim(), kvDim = c.kvDim();
    const int group = c.heads / c.kvHeads;
    const float scale = c.attnScale > 0 ? c.attnScale : 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t keys = pos0 + T; // the last query's keys
    const int64_t block = std::clamp<int64_t>(kAttentionScoreFloats / keys, 1, T);
    const int64_t blocks = (T + block - 1) / block;
    auto task = [&](int64_t h, int64_t blk) {
        const int64_t t0 = blk * block, t1 = std::min(T, t0 + block), m = t1 - t0;
        auto beginOf = [&](int64_t t) { return window > 0 ? std::max<int64_t>(0, pos0 + t + 1 - window) : 0; };
        const int64_t k0 = beginOf(t0), k1 = pos0 + t1, n = k1 - k0; // the keys the block sees
        const int64_t kvOff = (h / group) * hd;
        std::vector<float> S(static_cast<size_t>(m * n));
        dense::gemm(dense::Op::N, dense::Op::T, m, n, hd, q + t0 * qDim + h * hd, qDim, kc + k0 * kvDim + kvOff, kvDim,
                    S.data(), n, false);
        for (int64_t t = t0; t < t1; ++t) {
            float* row = S.data() + (t - t0) * n;
            const int64_t b = beginOf(t) - k0, e = pos0 + t + 1 - k0; // this query's keys: [b, e)
            float maxScore = -INFINITY;
            for (int64_t j = b; j < e; ++j) {
                float s = row[j] * scale;
                if (c.attnSoftcap > 0)
                    s = softcap(s, c.attnSoftcap);
                row[j] = s;
                maxScore = std::max(maxScore, s);
            }
            double sum = 0;
            for (int64_t j = b; j < e; ++j) {
                row[j] = std::exp(row[j] - maxScore);
                sum += row[j];
            }
            const float inv = static_cast<float>(1.0 / sum);
            std::fill(row, row + b, 0.0f);
            for (int64_t j = b; j < e; ++j)
                row[j] *= inv;
            std::fill(row + e, row + n, 0.0f);
        }
        dense::gemm(dense::Op::N, dense::Op::N, m, hd, n, S.data(), n, vc + k0 * kvDim + kvOff, kvDim,
                    att + t0 * qDim + h * hd, qDim, false);
    };
    if (static_cast<int64_t>(c.heads) * blocks == 1) {
        task(0, 0);
        return;
    }
    tbb::parallel_for(int64_t(0), static_cast<int64_t>(c.heads) * blocks,
                      [&](int64_t i) { task(i / blocks, i % blocks); });
}

// H += norm(x) (when the block has a post-norm) or x.
void residual(float* H, float* x, int64_t T, int64_t dim, const std::vector<float>& postNorm, float eps)
{
    if (!postNorm.empty())
        rmsNorm(x, postNorm, eps, T, dim, x);
    for (int64_t i = 0; i < T * dim; ++i)
        H[i] += x[i];
}

} // namespace

void rmsNorm(const float* x, const std::vector<float>& w, float eps, int64_t T, int64_t dim, float* out)
{
    auto rows = [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const float* xt = x + t * dim;
            double ss = 0;
            for (int64_t i = 0; i < dim; ++i)
                ss += double(xt[i]) * xt[i];
            const float inv = 1.0f / std::sqrt(static_cast<float>(ss / double(dim)) + eps);
            for (int64_t i = 0; i < dim; ++i)
                out[t * dim + i] = xt[i] * inv * w[static_cast<size_t>(i)];
        }
    };
    // Rows in parallel for a prompt (each row's numbers are the same at any thread count).
    if (T * dim < (int64_t(1) << 16))
        rows(0, T);
    else
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, T, 8),
                          [&](const tbb::blocked_range<int64_t>& r) { rows(r.begin(), r.end()); });
}

void finalNorm(const LlamaModel& model, const float* H, int64_t T, float* out)
{
    rmsNorm(H, model.finalNorm, model.config.normEps, T, model.config.dim, out);
}

void scaleEmbeddings(const LlamaConfig& config, float* E, int64_t T)
{
    if (config.embedScale == 1.0f)
        return;
    for (int64_t i = 0; i < T * config.dim; ++i)
        E[i] *= config.embedScale;
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
    scaleEmbeddings(model.config, H, static_cast<int64_t>(tokens.size()));
}

// q, k and v of the normed input X (T x dim) into q (T x qDim) and the cache's rows at cache.pos,
// head norms and RoPE, then attention into out (T x qDim). Shared by forwardLayer and
// forwardLayerPart (calibration), so that both give the same bits.
namespace {
void selfAttention(const LlamaModel& model, int layerIndex, const float* X, int64_t T, KvCache& cache, float* q,
                   float* out)
{
    const LlamaConfig& c = model.config;
    const LlamaLayer& layer = model.layers[static_cast<size_t>(layerIndex)];
    const int64_t qDim = c.qDim(), kvDim = c.kvDim(), pos0 = cache.pos;
    float* kc = cache.k.data() + static_cast<size_t>(layerIndex) * static_cast<size_t>(cache.capacity * kvDim);
    float* vc = cache.v.data() + static_cast<size_t>(layerIndex) * static_cast<size_t>(cache.capacity * kvDim);
    if (layer.fusedQkv()) {
        const int64_t width = qDim + 2 * kvDim;
        std::vector<float> qkv(static_cast<size_t>(T * width));
        project(layer, LinearSlot::Q, X, T, qkv.data());
        for (int64_t t = 0; t < T; ++t) {
            const float* row = qkv.data() + t * width;
            std::copy_n(row, qDim, q + t * qDim);
            std::copy_n(row + qDim, kvDim, kc + (pos0 + t) * kvDim);
            std::copy_n(row + qDim + kvDim, kvDim, vc + (pos0 + t) * kvDim);
        }
    } else {
        project(layer, LinearSlot::Q, X, T, q);
        project(layer, LinearSlot::K, X, T, kc + pos0 * kvDim);
        project(layer, LinearSlot::V, X, T, vc + pos0 * kvDim);
    }
    if (!layer.qNorm.empty())
        headNorm(q, T, c.heads, qDim, layer.qNorm, c.normEps);
    if (!layer.kNorm.empty())
        headNorm(kc + pos0 * kvDim, T, c.kvHeads, kvDim, layer.kNorm, c.normEps);
    const RopeAngles angles = ropeAngles(T, pos0, c, ropeTableOf(c, layerIndex, cache.capacity));
    rope(q, T, c.heads, qDim, c, angles);
    rope(kc + pos0 * kvDim, T, c.kvHeads, kvDim, c, angles);
    const bool local = !c.localLayer.empty() && c.localLayer[static_cast<size_t>(layerIndex)];
    attend(c, q, T, pos0, kc, vc, local ? c.window : 0, out);
}
} // namespace

// shape: long on purpose: one transformer block, read top to bottom as the model computes it.
void forwardLayer(const LlamaModel& model, int layerIndex, float* H, int64_t T, KvCache& cache,
                  const InputObserver* observer)
{
    const LlamaConfig& c = model.config;
    const LlamaLayer& layer = model.layers[static_cast<size_t>(layerIndex)];
    const int64_t dim = c.dim, qDim = c.qDim(), hidden = c.hiddenDim;
    const int64_t pos0 = cache.pos;
    if (pos0 + T > cache.capacity)
        throw Error(ErrorKind::InvalidArgument, "the context is full (" + std::to_string(cache.capacity) +
                                                    " positions); use a shorter text or a larger context");

    std::vector<float> xn(static_cast<size_t>(T * dim)), q(static_cast<size_t>(T * qDim)),
        att(static_cast<size_t>(T * qDim)), tmp(static_cast<size_t>(T * dim));
    rmsNorm(H, layer.attnNorm, c.normEps, T, dim, xn.data());
    if (observer)
        (*observer)(layerIndex, LinearInput::Attention, xn.data(), T, dim);

    selfAttention(model, layerIndex, xn.data(), T, cache, q.data(), att.data());
    if (observer)
        (*observer)(layerIndex, LinearInput::AttentionOutput, att.data(), T, qDim);
    project(layer, LinearSlot::O, att.data(), T, tmp.data());
    residual(H, tmp.data(), T, dim, layer.postAttnNorm, c.normEps);

    // Gated MLP: act(gate) * up, then down.
    rmsNorm(H, layer.ffnNorm, c.normEps, T, dim, xn.data());
    if (observer)
        (*observer)(layerIndex, LinearInput::Mlp, xn.data(), T, dim);
    std::vector<float> gate(static_cast<size_t>(T * hidden)), up(static_cast<size_t>(T * hidden));
    if (layer.fusedGateUp()) {
        std::vector<float> both(static_cast<size_t>(T * 2 * hidden));
        project(layer, LinearSlot::Gate, xn.data(), T, both.data());
        for (int64_t t = 0; t < T; ++t) {
            std::copy_n(both.data() + t * 2 * hidden, hidden, gate.data() + t * hidden);
            std::copy_n(both.data() + t * 2 * hidden + hidden, hidden, up.data() + t * hidden);
        }
    } else {
        project(layer, LinearSlot::Gate, xn.data(), T, gate.data());
        project(layer, LinearSlot::Up, xn.data(), T, up.data());
    }
    // act(gate) * up, token by token in parallel (the same numbers at any thread count).
    const bool gelu = c.activation == MlpActivation::GeluTanh;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, T, 16), [&](const tbb::blocked_range<int64_t>& r) {
        for (auto i = static_cast<size_t>(r.begin() * hidden); i < static_cast<size_t>(r.end() * hidden); ++i) {
            const float g = gate[i];
            gate[i] = gelu ? geluTanh(g) * up[i] : g / (1.0f + std::exp(-g)) * up[i];
        }
    });
    if (observer)
        (*observer)(layerIndex, LinearInput::MlpDown, gate.data(), T, hidden);
    project(layer, LinearSlot::Down, gate.data(), T, tmp.data());
    residual(H, tmp.data(), T, dim, layer.postFfnNorm, c.normEps);
}

// forwardLayer cut at its observer calls (kept separate from it: the hot path stays as it is;
// test_calibration checks that the parts give forwardLayer's bits).
void forwardLayerPart(const LlamaModel& model, int layerIndex, LinearInput from, const float* X, float* H, int64_t T,
                      KvCache* cache, float* next)
{
    const LlamaConfig& c = model.config;
    const LlamaLayer& layer = model.layers[static_cast<size_t>(layerIndex)];
    const int64_t dim = c.dim, qDim = c.qDim(), hidden = c.hiddenDim;
    switch (from) {
    case LinearInput::Attention: { // q, k, v and attention: next = the attention output
        const int64_t pos0 = cache->pos;
        if (pos0 + T > cache->capacity)
            throw Error(ErrorKind::InvalidArgument, "the context is full (" + std::to_string(cache->capacity) +
                                                        " positions); use a shorter text or a larger context");
        std::vector<float> q(static_cast<size_t>(T * qDim));
        selfAttention(model, layerIndex, X, T, *cache, q.data(), next);
        return;
    }
    case LinearInput::AttentionOutput: { // o and the residual: next = the MLP's normed input
        std::vector<float> tmp(static_cast<size_t>(T * dim));
        project(layer, LinearSlot::O, X, T, tmp.data());
        residual(H, tmp.data(), T, dim, layer.postAttnNorm, c.normEps);
        rmsNorm(H, layer.ffnNorm, c.normEps, T, dim, next);
        return;
    }
    case LinearInput::Mlp: { // act(gate) * up: next = down's input
        std::vector<float> gate(static_cast<size_t>(T * hidden)), up(static_cast<size_t>(T * hidden));
        if (layer.fusedGateUp()) {
            std::vector<float> both(static_cast<size_t>(T * 2 * hidden));
            project(layer, LinearSlot::Gate, X, T, both.data());
            for (int64_t t = 0; t < T; ++t) {
                std::copy_n(both.data() + t * 2 * hidden, hidden, gate.data() + t * hidden);
                std::copy_n(both.data() + t * 2 * hidden + hidden, hidden, up.data() + t * hidden);
            }
        } else {
            project(layer, LinearSlot::Gate, X, T, gate.data());
            project(layer, LinearSlot::Up, X, T, up.data());
        }
        if (c.activation == MlpActivation::GeluTanh) {
            for (size_t i = 0; i < gate.size(); ++i)
                next[i] = geluTanh(gate[i]) * up[i];
        } else {
            for (size_t i = 0; i < gate.size(); ++i) {
                const float g = gate[i];
                next[i] = g / (1.0f + std::exp(-g)) * up[i];
            }
        }
        return;
    }
    case LinearInput::MlpDown: { // down and the residual: the block's output in H
        std::vector<float> tmp(static_cast<size_t>(T * dim));
        project(layer, LinearSlot::Down, X, T, tmp.data());
        if (next)
            std::copy(tmp.begin(), tmp.end(), next);
        residual(H, tmp.data(), T, dim, layer.postFfnNorm, c.normEps);
        return;
    }
    }
}

void outputLogits(const LlamaModel& model, const float* H, int64_t T, float* logits)
{
    const int64_t dim = model.config.dim;
    std::vector<float> xn(static_cast<size_t>(T * dim));
    finalNorm(model, H, T, xn.data());
    model.head().forward(xn.data(), T, logits);
    if (const float cap = model.config.finalSoftcap; cap > 0)
        for (int64_t i = 0; i < T * model.config.vocab; ++i)
            logits[i] = softcap(logits[i], cap);
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
