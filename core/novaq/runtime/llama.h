#pragma once
// A forward pass for Llama-architecture models (Llama 2/3, Mistral, TinyLlama, SmolLM,
// llama2.c): RMSNorm, rotary position embeddings, grouped-query attention with a KV cache,
// SwiGLU MLP, tied or untied output. Configured from config.json (Hugging Face), GGUF
// `llama.*` metadata or a llama2.c header, reading weights from any ModelReader: the
// original files, or a .novaq file whose quantized matrices stay quantized and are
// multiplied in the code domain (runtime/quantized_linear.h).
//
// RoPE layouts: Hugging Face checkpoints rotate the two halves of each head (i, i + h/2);
// Meta/llama2.c checkpoints and GGUF `llama` files (whose q/k rows llama.cpp permuted)
// rotate adjacent pairs (2i, 2i + 1). The layout is chosen from the tensor names.

#include "novaq/formats/model_reader.h"

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novaq {

struct QuantizedTensor;

struct LlamaConfig {
    int dim = 0;       // hidden size
    int hiddenDim = 0; // MLP intermediate size
    int layers = 0;
    int heads = 0;
    int kvHeads = 0;
    int vocab = 0;
    int maxSeq = 2048; // positions the cache holds at most
    float normEps = 1e-5f;
    float ropeTheta = 10000.0f;
    bool ropeHalves = false; // true: (i, i + h/2) pairs (Hugging Face); false: adjacent pairs
    int bos = -1, eos = -1;

    int headDim() const noexcept { return dim / heads; }
    int kvDim() const noexcept { return kvHeads * headDim(); }
};

// The dimensions of a Llama-family model from the reader's metadata and tensor shapes.
// Throws Error(Unsupported) naming the architecture when it is not one we can run
// ("compression still works; evaluation needs a Llama-family model").
LlamaConfig llamaConfig(const ModelReader& reader);

// A weight matrix y = W x (rows x cols) as the runtime uses it.
class Linear {
public:
    virtual ~Linear() = default;
    virtual int64_t rows() const noexcept = 0;
    virtual int64_t cols() const noexcept = 0;
    // Y (T x rows) = X (T x cols) W^T, row-major.
    virtual void forward(const float* X, int64_t T, float* Y) const = 0;
    // Row r of W (embedding look-up).
    virtual void row(int64_t r, float* out) const = 0;
    virtual size_t memoryBytes() const noexcept = 0;
};

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::unique_ptr<Linear> makeDenseLinear(RowMatrix W);
std::unique_ptr<Linear> makeQuantizedLinear(const QuantizedTensor& q);

// The linear layers of one transformer block, in model order.
enum class LinearSlot { Q, K, V, O, Gate, Up, Down };
inline constexpr int kLinearSlots = 7;
std::string_view slotName(LinearSlot slot) noexcept;

struct LlamaLayer {
    std::unique_ptr<Linear> linear[kLinearSlots];
    std::vector<float> attnNorm, ffnNorm;
    Linear& at(LinearSlot s) const { return *linear[static_cast<int>(s)]; }
};

struct LlamaModel {
    LlamaConfig config;
    std::unique_ptr<Linear> embedding; // vocab x dim
    std::unique_ptr<Linear> output;    // vocab x dim; null when tied to the embedding
    std::vector<float> finalNorm;
    std::vector<LlamaLayer> layers;
    // Source tensor index of every matrix (reader.tensors()), for calibration and reports.
    std::vector<std::array<size_t, kLinearSlots>> layerTensor;
    size_t embeddingTensor = 0, outputTensor = 0;

    const Linear& head() const { return output ? *output : *embedding; }
    size_t memoryBytes() const noexcept;
};

// Where each weight of a Llama model is among reader.tensors().
struct LlamaTensorMap {
    size_t embedding = 0;
    std::optional<size_t> output; // none when tied to the embedding
    size_t finalNorm = 0;
    std::vector<std::array<size_t, kLinearSlots>> linear; // per layer
    std::vector<size_t> attnNorm, ffnNorm;
};
// Throws Error(InvalidInput) naming the first missing tensor.
LlamaTensorMap llamaTensors(const ModelReader& reader, const LlamaConfig& config);

struct LoadOptions {
    // Quantized matrices of a .novaq file: multiplied in the code domain (default), or
    // decoded to F32 once at load (faster batched evaluation, more memory).
    bool decodeQuantized = false;
};

// Loads the weights. Throws Error(Unsupported / InvalidInput) naming the missing tensor.
LlamaModel loadLlama(const ModelReader& reader, const LoadOptions& options = {});
// Loads one block's weights (calibration walks the model a block at a time).
LlamaLayer loadLlamaLayer(const ModelReader& reader, const LlamaConfig& config, const LlamaTensorMap& map, int layer,
                          const LoadOptions& options = {});

// The attention cache of one sequence.
struct KvCache {
    int64_t pos = 0;         // tokens already in the cache
    std::vector<float> k, v; // layers x maxSeq x kvDim
    explicit KvCache(const LlamaConfig& c, int64_t maxSeq = 0);
    int64_t capacity = 0;
};

// What calibration sees: the input of each group of linear layers before it is multiplied.
enum class LinearInput { Attention /*q,k,v*/, AttentionOutput /*o*/, Mlp /*gate,up*/, MlpDown /*down*/ };
using InputObserver = std::function<void(int layer, LinearInput site, const float* X, int64_t T, int64_t cols)>;

// Runs one transformer block over T tokens at positions cache.pos.. (rows of H, T x dim,
// updated in place), appending to the block's cache rows. Used by forward() and by
// calibration, which moves hidden states through the model one block at a time.
void forwardLayer(const LlamaModel& model, int layer, float* H, int64_t T, KvCache& cache,
                  const InputObserver* observer = nullptr);

// out (T x dim) = each row of x scaled to unit RMS (plus eps) times w.
void rmsNorm(const float* x, const std::vector<float>& w, float eps, int64_t T, int64_t dim, float* out);

// Embeds tokens into H (T x dim). Throws Error(InvalidArgument) on an id outside the vocabulary.
void embedTokens(const LlamaModel& model, std::span<const int32_t> tokens, float* H);

// Final norm and output layer: logits (T x vocab) from the last hidden states.
void outputLogits(const LlamaModel& model, const float* H, int64_t T, float* logits);

// Runs T tokens after what the cache holds; writes logits (T x vocab) when non-null,
// else only advances the cache. Throws Error(InvalidArgument) when the cache is full.
void forward(const LlamaModel& model, KvCache& cache, std::span<const int32_t> tokens, float* logits,
             const InputObserver* observer = nullptr);

} // namespace novaq
