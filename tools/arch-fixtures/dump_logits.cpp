// dump_logits: what llama.cpp computes for a model, written as data for our tests.
//
//   dump_logits MODEL.gguf N_CTX TOKENS N_PREDICT OUT_PREFIX [MODE]
//
// TOKENS is a comma-separated list of ids. One llama_decode of all TOKENS with logits requested
// at every position gives OUT_PREFIX.logits.f32 (little-endian float32, row-major
// [position][vocab]); then greedy decoding continues from the end of TOKENS for N_PREDICT tokens,
// one token per llama_decode, argmax with the lowest id on ties (there are none in our
// fixtures: the margins are printed to OUT_PREFIX.json so that one can check). OUT_PREFIX.json
// holds n_vocab, the tokens, the continuation and per position the top-1 minus top-2 margin.
//
// Deterministic settings: one thread, context N_CTX, and per MODE: f32 (the default) F32 K/V
// cache without flash attention; f16 F16 K/V cache without flash attention; f32-fa F32 K/V
// cache with flash attention (for llama.cpp builds that accept it: the ik_llama.cpp snapshot's
// non-flash-attention path is wrong with an F32 V cache and its CPU flash attention refuses
// F32 K/V, so it runs with f16),
// (which decides llama.cpp's long/short RoPE factors for longrope models), one sequence.
// Builds against libllama only (no common/): see regenerate.sh, which defines
// NOVAQ_LLAMA_VOCAB_API for llama.cpp trees whose llama.h has llama_model_free.

#include "llama.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::vector<llama_token> parseTokens(const char* s)
{
    std::vector<llama_token> out;
    std::string cur;
    for (const char* p = s;; ++p) {
        if (*p == ',' || *p == '\0') {
            if (!cur.empty())
                out.push_back(static_cast<llama_token>(std::stol(cur)));
            cur.clear();
            if (*p == '\0')
                break;
        } else {
            cur += *p;
        }
    }
    return out;
}

struct Top2 {
    int best = 0;
    float margin = 0;
};

Top2 top2(const float* logits, int n)
{
    int best = 0;
    for (int i = 1; i < n; ++i)
        if (logits[i] > logits[best])
            best = i;
    float second = -1e30f;
    for (int i = 0; i < n; ++i)
        if (i != best && logits[i] > second)
            second = logits[i];
    return {best, logits[best] - second};
}

void quietLog(ggml_log_level level, const char* text, void*)
{
    if (level == GGML_LOG_LEVEL_ERROR)
        std::fputs(text, stderr);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 6 && argc != 7) {
        std::fprintf(stderr, "usage: %s MODEL.gguf N_CTX TOKENS N_PREDICT OUT_PREFIX [f32|f16|f32-fa]\n", argv[0]);
        return 2;
    }
    const std::string modelPath = argv[1];
    const int nCtx = std::atoi(argv[2]);
    const std::vector<llama_token> tokens = parseTokens(argv[3]);
    const int nPredict = std::atoi(argv[4]);
    const std::string prefix = argv[5];
    const std::string kvType = argc == 7 ? argv[6] : "f32";
    if (kvType != "f32" && kvType != "f16" && kvType != "f32-fa") {
        std::fprintf(stderr, "MODE must be f32, f16 or f32-fa\n");
        return 2;
    }
    const ggml_type kv = kvType == "f16" ? GGML_TYPE_F16 : GGML_TYPE_F32;
    const bool flashAttention = kvType == "f32-fa";
    if (tokens.empty() || nCtx < static_cast<int>(tokens.size()) + nPredict) {
        std::fprintf(stderr, "need 1 <= tokens and tokens + N_PREDICT <= N_CTX\n");
        return 2;
    }

    llama_log_set(quietLog, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_mmap = false;
    llama_model* model = llama_model_load_from_file(modelPath.c_str(), mp);
    if (!model) {
        std::fprintf(stderr, "cannot load %s\n", modelPath.c_str());
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(nCtx);
    cp.n_batch = static_cast<uint32_t>(nCtx);
    cp.n_ubatch = static_cast<uint32_t>(nCtx);
    cp.n_seq_max = 1;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.type_k = kv;
    cp.type_v = kv;
    cp.flash_attn = flashAttention;
    cp.offload_kqv = false;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        std::fprintf(stderr, "cannot create a context\n");
        return 1;
    }
#ifdef NOVAQ_LLAMA_VOCAB_API // llama.cpp since early 2025: the vocabulary is its own object
    const int nVocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
#else // ik_llama.cpp
    const int nVocab = llama_n_vocab(model);
#endif
    const int n = static_cast<int>(tokens.size());

    llama_batch batch = llama_batch_init(nCtx, 0, 1);
    batch.n_tokens = n;
    for (int i = 0; i < n; ++i) {
        batch.token[i] = tokens[static_cast<size_t>(i)];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed\n");
        return 1;
    }
    std::vector<float> all(static_cast<size_t>(n) * static_cast<size_t>(nVocab));
    std::vector<float> margins;
    for (int i = 0; i < n; ++i) {
        const float* row = llama_get_logits_ith(ctx, i);
        std::copy(row, row + nVocab, all.begin() + static_cast<std::ptrdiff_t>(i) * nVocab);
        margins.push_back(top2(row, nVocab).margin);
    }

    std::vector<llama_token> continuation;
    std::vector<float> greedyMargins;
    Top2 next = top2(llama_get_logits_ith(ctx, n - 1), nVocab);
    for (int k = 0; k < nPredict; ++k) {
        continuation.push_back(next.best);
        greedyMargins.push_back(next.margin);
        if (k + 1 == nPredict)
            break;
        batch.n_tokens = 1;
        batch.token[0] = next.best;
        batch.pos[0] = n + k;
        batch.n_seq_id[0] = 1;
        batch.seq_id[0][0] = 0;
        batch.logits[0] = 1;
        if (llama_decode(ctx, batch) != 0) {
            std::fprintf(stderr, "llama_decode failed (greedy step %d)\n", k);
            return 1;
        }
        next = top2(llama_get_logits_ith(ctx, 0), nVocab);
    }

    FILE* f = std::fopen((prefix + ".logits.f32").c_str(), "wb");
    if (!f || std::fwrite(all.data(), sizeof(float), all.size(), f) != all.size() || std::fclose(f) != 0) {
        std::fprintf(stderr, "cannot write %s.logits.f32\n", prefix.c_str());
        return 1;
    }
    f = std::fopen((prefix + ".json").c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "cannot write %s.json\n", prefix.c_str());
        return 1;
    }
    auto list = [f](const char* name, const auto& v, bool last) {
        std::fprintf(f, "  \"%s\": [", name);
        for (size_t i = 0; i < v.size(); ++i)
            std::fprintf(f, i ? ", %.9g" : "%.9g", static_cast<double>(v[i]));
        std::fprintf(f, "]%s\n", last ? "" : ",");
    };
    char desc[256] = {};
    llama_model_desc(model, desc, sizeof desc);
    std::fprintf(f, "{\n  \"model_desc\": \"%s\",\n  \"n_ctx\": %d,\n  \"n_vocab\": %d,\n  \"kv_type\": \"%s\",\n",
                 desc, nCtx, nVocab, kvType.c_str());
    list("tokens", tokens, false);
    list("continuation", continuation, false);
    list("top1_margin", margins, false);
    list("greedy_top1_margin", greedyMargins, true);
    std::fprintf(f, "}\n");
    std::fclose(f);

    llama_batch_free(batch);
    llama_free(ctx);
#ifdef NOVAQ_LLAMA_VOCAB_API
    llama_model_free(model);
#else
    llama_free_model(model);
#endif
    llama_backend_free();
    return 0;
}
