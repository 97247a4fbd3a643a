#pragma once
// The architecture table: everything the engine knows about a decoder-only family, one row
// each, in the spirit of llama.cpp's architecture and tensor-name maps. The runtime, the
// calibration, the planner, `inspect` and the report all read it; adding a family is a row
// here (plus a kernel in runtime/llama.cpp only when it brings a new operation).
//
// A row says, per family: the config.json `model_type` values and the GGUF
// `general.architecture` it answers to; the tensor names of both layouts; the RoPE layout of
// each layout (Hugging Face checkpoints rotate the halves of a head (i, i + d/2); llama.cpp's
// converter permutes the q/k rows of `llama` GGUFs so they rotate adjacent pairs (2i, 2i + 1),
// while `qwen2`, `gemma*` and `phi3` GGUFs keep the halves); the norm (Gemma's x * (1 + w) in
// Hugging Face files, which llama.cpp's converter turns into x * w' with w' = 1 + w); the
// embedding scale; the MLP activation; which layers attend to a sliding window.
// Configuration values (head sizes, RoPE scaling, soft-capping, window sizes) come from the
// model's config.json or GGUF metadata and land in LlamaConfig (runtime/llama.h).

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace novaq {

enum class RopeLayout { Halves, Adjacent };
enum class MlpActivation { SiLU, GeluTanh };
// Which layers attend to a sliding window (when the model has one).
enum class WindowLayers {
    None,           // no sliding window
    All,            // every layer (Mistral)
    EvenLocal,      // layers 0, 2, 4, ... local, the others global (Gemma 2)
    EveryNthGlobal, // every `windowPattern`-th layer global, the others local (Gemma 3: 5 local, 1 global)
};

// Tensor names of one layout. Per-layer names follow `layerPrefix` + layer number + '.'.
// nullptr: the layout has no such tensor. Fused projections (Phi-3) name `qkv`/`gateUp`.
struct TensorNames {
    const char* embedding;
    const char* output;
    const char* finalNorm;
    const char* layerPrefix;
    const char* q;
    const char* k;
    const char* v;
    const char* qkv; // fused q, k, v (rows in that order)
    const char* o;
    const char* gate;
    const char* up;
    const char* gateUp; // fused gate, up (rows in that order)
    const char* down;
    const char* attnNorm;
    const char* postAttnNorm; // Gemma 2/3: norm of the attention output before the residual
    const char* ffnNorm;
    const char* postFfnNorm; // Gemma 2/3: norm of the MLP output before the residual
    const char* qNorm;       // per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3)
    const char* kNorm;
};

struct Layout {
    const char* name; // "Hugging Face", "GGUF", "Meta"
    TensorNames names;
    RopeLayout rope;
    bool normPlusOne; // norms are x * (1 + w)
};

struct Architecture {
    const char* name;                      // our name: "llama", "qwen2", ...
    const char* families;                  // the models people know it by, for `inspect`
    std::array<const char*, 4> modelTypes; // config.json model_type values (nullptr-padded)
    std::array<const char*, 2> ggufNames;  // GGUF general.architecture values (nullptr-padded)
    std::array<Layout, 3> layouts;         // Hugging Face, GGUF, then an optional third (name nullptr when absent)
    bool embeddingScale;                   // hidden states start as embedding * sqrt(hidden)
    MlpActivation activation;              // of the gate: act(gate) * up
    WindowLayers window;                   // which layers use the sliding window
    bool qkNorm;                           // q/k RMSNorm before RoPE
    bool sandwichNorms;                    // post-attention and pre/post-MLP norms (Gemma 2/3)
    bool fused;                            // fused qkv and gate_up projections (Phi-3)
};

std::span<const Architecture> architectures() noexcept;

// The row for a config.json model_type / GGUF general.architecture; nullptr when none.
const Architecture* architectureForModelType(std::string_view modelType) noexcept;
const Architecture* architectureForGguf(std::string_view ggufArchitecture) noexcept;

// "llama, mistral, qwen2, ..." for messages.
std::string supportedArchitectureList();

} // namespace novaq
