#include "novaq/runtime/architecture.h"

namespace novaq {

namespace {

// Hugging Face names shared by the Llama-like families; only the norms around the MLP differ.
constexpr TensorNames hfNames(const char* postAttnNorm, const char* ffnNorm, const char* postFfnNorm,
                              bool qkNorm) noexcept
{
    return TensorNames{"model.embed_tokens.weight",
                       "lm_head.weight",
                       "model.norm.weight",
                       "model.layers.",
                       "self_attn.q_proj.weight",
                       "self_attn.k_proj.weight",
                       "self_attn.v_proj.weight",
                       "self_attn.qkv_proj.weight",
                       "self_attn.o_proj.weight",
                       "mlp.gate_proj.weight",
                       "mlp.up_proj.weight",
                       "mlp.gate_up_proj.weight",
                       "mlp.down_proj.weight",
                       "input_layernorm.weight",
                       postAttnNorm,
                       ffnNorm,
                       postFfnNorm,
                       qkNorm ? "self_attn.q_norm.weight" : nullptr,
                       qkNorm ? "self_attn.k_norm.weight" : nullptr};
}

// llama.cpp's names (llama-arch.cpp's tensor map), the same for every family here.
constexpr TensorNames ggufNames(bool sandwich, bool qkNorm) noexcept
{
    return TensorNames{"token_embd.weight",
                       "output.weight",
                       "output_norm.weight",
                       "blk.",
                       "attn_q.weight",
                       "attn_k.weight",
                       "attn_v.weight",
                       "attn_qkv.weight",
                       "attn_output.weight",
                       "ffn_gate.weight",
                       "ffn_up.weight",
                       nullptr, // Phi-3's fused gate+up is ffn_up with twice the rows: see gateUpInUp below
                       "ffn_down.weight",
                       "attn_norm.weight",
                       sandwich ? "post_attention_norm.weight" : nullptr,
                       "ffn_norm.weight",
                       sandwich ? "post_ffw_norm.weight" : nullptr,
                       qkNorm ? "attn_q_norm.weight" : nullptr,
                       qkNorm ? "attn_k_norm.weight" : nullptr};
}

// Meta's original checkpoints and llama2.c exports.
constexpr TensorNames kMetaNames{"tok_embeddings.weight",
                                 "output.weight",
                                 "norm.weight",
                                 "layers.",
                                 "attention.wq.weight",
                                 "attention.wk.weight",
                                 "attention.wv.weight",
                                 nullptr,
                                 "attention.wo.weight",
                                 "feed_forward.w1.weight",
                                 "feed_forward.w3.weight",
                                 nullptr,
                                 "feed_forward.w2.weight",
                                 "attention_norm.weight",
                                 nullptr,
                                 "ffn_norm.weight",
                                 nullptr,
                                 nullptr,
                                 nullptr};

constexpr Layout kNone{nullptr, {}, RopeLayout::Halves, false};

constexpr Layout hf(const TensorNames& names, bool plusOne = false) noexcept
{
    return Layout{"Hugging Face", names, RopeLayout::Halves, plusOne};
}
constexpr Layout gguf(const TensorNames& names, RopeLayout rope) noexcept { return Layout{"GGUF", names, rope, false}; }

constexpr TensorNames kHfPlain = hfNames(nullptr, "post_attention_layernorm.weight", nullptr, false);
constexpr TensorNames kHfQkNorm = hfNames(nullptr, "post_attention_layernorm.weight", nullptr, true);
constexpr TensorNames kHfSandwich = hfNames("post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
                                            "post_feedforward_layernorm.weight", false);
constexpr TensorNames kHfSandwichQkNorm = hfNames("post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
                                                  "post_feedforward_layernorm.weight", true);

// Gemma 3's multimodal checkpoints (model_type "gemma3", Gemma3ForConditionalGeneration) keep
// the language model under "language_model."; the vision tower is not run.
constexpr TensorNames kHfGemma3Multimodal{"language_model.model.embed_tokens.weight",
                                          "language_model.lm_head.weight",
                                          "language_model.model.norm.weight",
                                          "language_model.model.layers.",
                                          kHfSandwichQkNorm.q,
                                          kHfSandwichQkNorm.k,
                                          kHfSandwichQkNorm.v,
                                          kHfSandwichQkNorm.qkv,
                                          kHfSandwichQkNorm.o,
                                          kHfSandwichQkNorm.gate,
                                          kHfSandwichQkNorm.up,
                                          kHfSandwichQkNorm.gateUp,
                                          kHfSandwichQkNorm.down,
                                          kHfSandwichQkNorm.attnNorm,
                                          kHfSandwichQkNorm.postAttnNorm,
                                          kHfSandwichQkNorm.ffnNorm,
                                          kHfSandwichQkNorm.postFfnNorm,
                                          kHfSandwichQkNorm.qNorm,
                                          kHfSandwichQkNorm.kNorm};

// shape: long on purpose: the table reads best as one list of rows.
constexpr Architecture kArchitectures[] = {
    {"llama",
     "Llama 2, Llama 3.x, TinyLlama, SmolLM, llama2.c",
     {"llama", nullptr, nullptr, nullptr},
     {"llama", nullptr},
     {hf(kHfPlain), gguf(ggufNames(false, false), RopeLayout::Adjacent),
      Layout{"Meta", kMetaNames, RopeLayout::Adjacent, false}},
     false,
     MlpActivation::SiLU,
     WindowLayers::None,
     false,
     false,
     false},
    {"mistral",
     "Mistral 7B",
     {"mistral", nullptr, nullptr, nullptr},
     {nullptr, nullptr}, // llama.cpp converts Mistral to `llama`
     {hf(kHfPlain), kNone, kNone},
     false,
     MlpActivation::SiLU,
     WindowLayers::All,
     false,
     false,
     false},
    {"qwen2",
     "Qwen2, Qwen2.5",
     {"qwen2", nullptr, nullptr, nullptr},
     {"qwen2", nullptr},
     {hf(kHfPlain), gguf(ggufNames(false, false), RopeLayout::Halves), kNone},
     false,
     MlpActivation::SiLU,
     WindowLayers::None,
     false,
     false,
     false},
    {"qwen3",
     "Qwen3",
     {"qwen3", nullptr, nullptr, nullptr},
     {"qwen3", nullptr},
     {hf(kHfQkNorm), gguf(ggufNames(false, true), RopeLayout::Halves), kNone},
     false,
     MlpActivation::SiLU,
     WindowLayers::None,
     true,
     false,
     false},
    {"gemma",
     "Gemma",
     {"gemma", nullptr, nullptr, nullptr},
     {"gemma", nullptr},
     {hf(kHfPlain, true), gguf(ggufNames(false, false), RopeLayout::Halves), kNone},
     true,
     MlpActivation::GeluTanh,
     WindowLayers::None,
     false,
     false,
     false},
    {"gemma2",
     "Gemma 2",
     {"gemma2", nullptr, nullptr, nullptr},
     {"gemma2", nullptr},
     {hf(kHfSandwich, true), gguf(ggufNames(true, false), RopeLayout::Halves), kNone},
     true,
     MlpActivation::GeluTanh,
     WindowLayers::EvenLocal,
     false,
     true,
     false},
    {"gemma3",
     "Gemma 3 text models",
     {"gemma3_text", "gemma3", nullptr, nullptr},
     {"gemma3", nullptr},
     {hf(kHfSandwichQkNorm, true), gguf(ggufNames(true, true), RopeLayout::Halves),
      Layout{"Hugging Face (multimodal)", kHfGemma3Multimodal, RopeLayout::Halves, true}},
     true,
     MlpActivation::GeluTanh,
     WindowLayers::EveryNthGlobal,
     true,
     true,
     false},
    {"phi3",
     "Phi-3, Phi-3.5, Phi-4-mini",
     {"phi3", nullptr, nullptr, nullptr},
     {"phi3", nullptr},
     {hf(kHfPlain), gguf(ggufNames(false, false), RopeLayout::Halves), kNone},
     false,
     MlpActivation::SiLU,
     WindowLayers::All,
     false,
     false,
     true},
};

} // namespace

std::span<const Architecture> architectures() noexcept { return kArchitectures; }

const Architecture* architectureForModelType(std::string_view modelType) noexcept
{
    for (const Architecture& a : kArchitectures)
        for (const char* t : a.modelTypes)
            if (t && modelType == t)
                return &a;
    return nullptr;
}

const Architecture* architectureForGguf(std::string_view ggufArchitecture) noexcept
{
    for (const Architecture& a : kArchitectures)
        for (const char* t : a.ggufNames)
            if (t && ggufArchitecture == t)
                return &a;
    return nullptr;
}

std::string supportedArchitectureList()
{
    std::string out;
    for (const Architecture& a : kArchitectures) {
        if (!out.empty())
            out += ", ";
        out += a.name;
    }
    return out;
}

} // namespace novaq
