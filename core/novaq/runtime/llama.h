#pragma once
// A forward pass for the decoder-only families of the architecture table
// (runtime/architecture.h: Llama 2/3.x, Mistral, Qwen2/2.5/3, Gemma 1/2/3, Phi-3/3.5/4-mini,
// TinyLlama, SmolLM, llama2.c): RMSNorm (Gemma's 1 + w folded into the weights at load),
// rotary position embeddings (whole or partial heads, linear / llama3 / YaRN / LongRoPE
// scaling), grouped-query attention with a KV cache, optional q/k/v biases, q/k norms,
// soft-capping and sliding windows, a gated MLP (SwiGLU or GELU-tanh), tied or untied output.
// Configured from config.json (Hugging Face), GGUF metadata or a llama2.c header, reading
// weights from any ModelReader: the original files, or a .novaq file whose quantized
// matrices stay quantized and are multiplied in the code domain (runtime/quantized_linear.h).
// The names keep "Llama" from when it was the only family.

#include "novaq/codec/codec_config.h"
#include "novaq/formats/model_reader.h"
#include "novaq/runtime/architecture.h"
#include "novaq/runtime/quantized_linear.h"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

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
    const Architecture* arch = nullptr; // the row of the table
    const Layout* layout = nullptr;     // the naming layout of the file (Hugging Face, GGUF, Meta)
    int dim = 0;                        // hidden size
    int hiddenDim = 0;                  // MLP intermediate size
    int layers = 0;
    int heads = 0;
    int kvHeads = 0;
    int headSize = 0; // head_dim; 0: dim / heads
    int vocab = 0;
    int maxSeq = 2048; // positions the cache holds at most
    float normEps = 1e-5f;
    float ropeTheta = 10000.0f;
    bool ropeHalves = false; // true: (i, i + r/2) pairs (Hugging Face, NeoX); false: adjacent pairs
    int ropeDims = 0;        // rotated dimensions of each head (partial rotary); 0: the whole head
    // Angle per position of each rotated pair, for global and (when they differ) local layers;
    // LongRoPE has a second global table for contexts longer than ropeLongFrom.
    std::vector<double> ropeFreq, ropeFreqLocal, ropeFreqLong;
    float ropeThetaLocal = 0; // base of ropeFreqLocal
    int64_t ropeLongFrom = 0; // caches larger than this use ropeFreqLong
    float ropeAttnFactor = 1; // cos and sin scaled by this (YaRN, LongRoPE)
    std::string ropeScaling;  // "", "linear", "llama3", "yarn", "longrope": for reports
    bool normPlusOne = false; // norm weights were stored as w, applied as 1 + w (folded at load)
    float embedScale = 1;     // hidden states start as embedding * this (Gemma: sqrt(dim))
    MlpActivation activation = MlpActivation::SiLU;
    float attnScale = 0;          // q.k scale; 0: 1 / sqrt(headDim)
    float attnSoftcap = 0;        // scores -> cap * tanh(scores / cap) when > 0 (Gemma 2)
    float finalSoftcap = 0;       // logits -> cap * tanh(logits / cap) when > 0 (Gemma 2)
    int window = 0;               // sliding window of local layers (tokens), 0: none
    std::vector<bool> localLayer; // per layer: attends to the window only
    int bos = -1, eos = -1;

    int headDim() const noexcept { return headSize > 0 ? headSize : dim / heads; }
    int qDim() const noexcept { return heads * headDim(); }
    int kvDim() const noexcept { return kvHeads * headDim(); }
    int rotaryDims() const noexcept { return ropeDims > 0 ? ropeDims : headDim(); }
};

// The dimensions and features of a model of the architecture table from the reader's metadata and tensor shapes.
// Throws Error(Unsupported) naming the architecture, or the feature, when it is not one we
// can run ("compression still works"), and Error(InvalidInput) naming the field of a bad value.
LlamaConfig llamaConfig(const ModelReader& reader);

// The architecture row and the features a configuration uses, for `inspect` and reports:
// {"architecture", "families", "layout", "head_dim", "rope": {...}, "window", ...}.
nlohmann::json describeConfig(const LlamaConfig& config);
// The same in one line of words: "gemma2 (Gemma 2), Hugging Face layout: ...".
std::string describeConfigText(const LlamaConfig& config);

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
    // The codec settings when multiplied in the code domain; null for a dense matrix.
    virtual const CodecConfig* quantized() const noexcept { return nullptr; }
};

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::unique_ptr<Linear> makeDenseLinear(RowMatrix W);
std::unique_ptr<Linear> makeQuantizedLinear(const QuantizedTensor& q, Tables tables = Tables::F32);

// The linear layers of one transformer block, in model order.
enum class LinearSlot { Q, K, V, O, Gate, Up, Down };
inline constexpr int kLinearSlots = 7;
std::string_view slotName(LinearSlot slot) noexcept;

// Fused projections (Phi-3): slot Q holds q, k and v stacked (K and V empty), slot Gate holds
// gate and up stacked (Up empty).
struct LlamaLayer {
    std::unique_ptr<Linear> linear[kLinearSlots];
    std::vector<float> bias[kLinearSlots]; // empty: none
    std::vector<float> attnNorm, ffnNorm;
    std::vector<float> postAttnNorm, postFfnNorm; // empty: none (Gemma 2/3 have them)
    std::vector<float> qNorm, kNorm;              // empty: none (Qwen3, Gemma 3)
    Linear& at(LinearSlot s) const { return *linear[static_cast<int>(s)]; }
    bool fusedQkv() const noexcept { return !linear[static_cast<int>(LinearSlot::K)]; }
    bool fusedGateUp() const noexcept { return !linear[static_cast<int>(LinearSlot::Up)]; }
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
    // Bytes of the matrices as held (quantized ones in their code-domain form, others as f32).
    size_t memoryBytes() const noexcept;
    // Everything the weights hold: the matrices, and the norm and bias vectors.
    size_t weightBytes() const noexcept;
};

inline constexpr size_t kNoTensor = static_cast<size_t>(-1);

// Where each weight of a model is among reader.tensors(); kNoTensor where there is none
// (K and V of a fused qkv, Up of a fused gate_up).
struct LlamaTensorMap {
    size_t embedding = 0;
    std::optional<size_t> output; // none when tied to the embedding
    size_t finalNorm = 0;
    std::vector<std::array<size_t, kLinearSlots>> linear; // per layer
    std::vector<std::array<size_t, kLinearSlots>> bias;   // per layer, kNoTensor: no bias
    std::vector<size_t> attnNorm, ffnNorm;
    std::vector<size_t> postAttnNorm, postFfnNorm, qNorm, kNorm; // per layer, kNoTensor: none
};
// Throws Error(InvalidInput) naming the first missing tensor.
LlamaTensorMap llamaTensors(const ModelReader& reader, const LlamaConfig& config);

struct LoadOptions {
    // Quantized matrices of a .novaq file: multiplied in the code domain (default), or
    // decoded to F32 once at load (faster batched evaluation, more memory).
    bool decodeQuantized = false;
    // The look-up tables of a token's mat-vec in the code domain (quantized_linear.h): int8
    // where this CPU has AVX-512 VBMI (2-4x faster, ~1% rounding per product), else f32. Int8
    // tables also bring the int8 product for prompts (Gemm::Int8) where the CPU has VNNI.
    Tables tables = fastestTables();
};

// Loads the weights. Throws Error(Unsupported / InvalidInput) naming the missing tensor.
LlamaModel loadLlama(const ModelReader& reader, const LoadOptions& options = {});
// The final norm's weights (Gemma's 1 + w folded in), for calibration.
std::vector<float> readFinalNorm(const ModelReader& reader, const LlamaConfig& config, const LlamaTensorMap& map);
// Loads one block's weights (calibration walks the model a block at a time).
LlamaLayer loadLlamaLayer(const ModelReader& reader, const LlamaConfig& config, const LlamaTensorMap& map, int layer,
                          const LoadOptions& options = {});

// The attention cache of one sequence.
struct KvCache {
    int64_t pos = 0;         // tokens already in the cache
    std::vector<float> k, v; // layers x maxSeq x kvDim
    explicit KvCache(const LlamaConfig& c, int64_t maxSeq = 0);
    int64_t capacity = 0;
    // Bytes the cache holds (keys and values, f32, allocated in full when it is made).
    size_t memoryBytes() const noexcept { return (k.capacity() + v.capacity()) * sizeof(float); }
};

// --- What running a model holds in memory (`--fit-memory`, issue 18).

// Tokens per forward() call when a prompt runs (the generator's chunk): the batch that sets
// the largest working buffers.
inline constexpr int64_t kForwardBatchTokens = 256;
// Attention scores one task holds (a block of queries of one head against the keys they see):
// the block is as many queries as fit, one at least (then a row of keys, however many).
inline constexpr int64_t kAttentionScoreFloats = 16384;

// The bytes a QuantizedLinear holds for a rows x cols matrix at `config` (codes at one or two
// bytes each in groups of 64 rows, both codebook layouts, row and column scales, the subspace
// offsets); the layout is quantized_linear.cpp's constructor. Before any file exists: the
// planner's prediction. test_fit_memory checks it against memoryBytes() of loaded matrices.
uint64_t predictQuantizedLinearBytes(int64_t rows, int64_t cols, const CodecConfig& config) noexcept;

// The working buffers of forward() over `batch` tokens with a cache of `context` positions:
// the hidden states, the block's activations (normed input, q, attention output, MLP gate and
// up, fused projections), the attention scores, the final norm and the logits of one token;
// plus the largest per-call scratch of a linear layer on `threads` threads (a decoded block of
// 128 rows per thread, the repacked input, the look-up tables). The buffers are the ones
// forwardLayer / forward / outputLogits allocate (llama.cpp); tests measure them. Attention
// scores: max(kAttentionScoreFloats, context) floats per thread (`threads` in the second form).
uint64_t forwardScratchBytes(const LlamaModel& model, int64_t batch, int64_t context, int threads) noexcept;
uint64_t forwardScratchBytes(const LlamaConfig& config, int64_t batch, int64_t context, uint64_t linearScratch,
                             bool fusedQkv = false, bool fusedGateUp = false, int threads = 1) noexcept;
// The largest per-call scratch of one linear layer with `cols` columns (0 for a dense one, whose
// product Eigen runs without one of its own): quantized with `config` when non-null.
uint64_t linearScratchBytes(int64_t cols, const CodecConfig* config, int64_t batch, int threads) noexcept;

// What the runtime holds: measured from its buffers for weights and cache, and the working
// buffers of a forward pass of `batch` tokens (forwardScratchBytes).
struct RuntimeMemory {
    uint64_t weights = 0, kvCache = 0, scratch = 0;
    uint64_t total() const noexcept { return weights + kvCache + scratch; }
};
RuntimeMemory runtimeMemory(const LlamaModel& model, const KvCache& cache, int64_t batch = kForwardBatchTokens,
                            int threads = 0);

// What calibration sees: the input of each group of linear layers before it is multiplied.
enum class LinearInput { Attention /*q,k,v*/, AttentionOutput /*o*/, Mlp /*gate,up*/, MlpDown /*down*/ };
using InputObserver = std::function<void(int layer, LinearInput site, const float* X, int64_t T, int64_t cols)>;

// Runs one transformer block over T tokens at positions cache.pos.. (rows of H, T x dim,
// updated in place), appending to the block's cache rows. Used by forward() and by
// calibration, which moves hidden states through the model one block at a time.
void forwardLayer(const LlamaModel& model, int layer, float* H, int64_t T, KvCache& cache,
                  const InputObserver* observer = nullptr);

// Calibration's resumable forward (pipeline/calibrate.cpp): the part of forwardLayer from the
// input X of group `from` (T x its width) to the input of the next group, written to `next`
// (T x its width), with H (T x dim) the residual stream as forwardLayer has it at that point,
// updated by the parts that add to it (after o, after down). From MlpDown the part ends the
// block; `next`, when non-null, gets down's output before any post-norm (T x dim). `cache` is
// used (and needed) from Attention only. The same
// arithmetic as forwardLayer: the parts run in turn give forwardLayer's result to the bit.
void forwardLayerPart(const LlamaModel& model, int layer, LinearInput from, const float* X, float* H, int64_t T,
                      KvCache* cache, float* next);

// out (T x dim) = each row of x scaled to unit RMS (plus eps) times w.
void rmsNorm(const float* x, const std::vector<float>& w, float eps, int64_t T, int64_t dim, float* out);

// The final norm as the model applies it (the output layer's input), T x dim.
void finalNorm(const LlamaModel& model, const float* H, int64_t T, float* out);

// The hidden states the blocks start from for embedding rows E (T x dim, in place): times
// the embedding scale of the architecture (Gemma), else unchanged.
void scaleEmbeddings(const LlamaConfig& config, float* E, int64_t T);

// Embeds tokens into H (T x dim), scaled. Throws Error(InvalidArgument) on an id outside the vocabulary.
void embedTokens(const LlamaModel& model, std::span<const int32_t> tokens, float* H);

// Final norm, output layer and soft-capping: logits (T x vocab) from the last hidden states.
void outputLogits(const LlamaModel& model, const float* H, int64_t T, float* logits);

// Runs T tokens after what the cache holds; writes logits (T x vocab) when non-null,
// else only advances the cache. Throws Error(InvalidArgument) when the cache is full.
void forward(const LlamaModel& model, KvCache& cache, std::span<const int32_t> tokens, float* logits,
             const InputObserver* observer = nullptr);

} // namespace novaq
