#pragma once
// Streaming text generation for chat and the HTTP server: prompt ids in, text out piece by
// piece, with sampling (sampler.h), stop tokens, stop strings that never leak into the stream,
// whole UTF-8 characters only, cancellation, and a KV cache kept between calls so that a
// prompt extending the previous one (the next turn of a chat) only runs its new tokens.

#include "novaq/io/cancel.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/sampler.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace novaq {

class Tokenizer;
class ChatTemplate;

// Text of generated ids as it grows, exactly as Tokenizer::decode(context + generated) goes
// past decode(context) (so a leading space or a character made of byte tokens comes out as the
// whole decode gives it), without re-decoding everything for each token: it decodes a short
// window after an anchor of recent ids. Text whose last bytes may still change (a character
// whose byte tokens have not all arrived, shown by the decoder as U+FFFD) is held back.
class IncrementalDecoder {
public:
    IncrementalDecoder(const Tokenizer& tokenizer, std::span<const int32_t> context);
    // The new text that `id` settles (possibly empty).
    std::string push(int32_t id);
    // Whatever is still held back (at the end of the generation).
    std::string flush();

private:
    void anchorAt(std::vector<int32_t> ids);
    const Tokenizer& m_tokenizer;
    std::vector<int32_t> m_window; // anchor ids, then ids since
    size_t m_anchorBytes = 0;      // decode(anchor).size()
    std::string m_emitted;         // text given out since the anchor
};

// Text-level stop strings: text goes in as it is decoded; what comes out can never be (part of)
// a stop string. Holds back a tail that could still become one.
class StopScanner {
public:
    explicit StopScanner(std::vector<std::string> stops);
    // The text that is safe to show; sets stopped() when a stop string appeared (the text before
    // it is returned, the stop string and everything after are dropped).
    std::string push(std::string_view text);
    std::string flush(); // the held tail, at the end of the generation (no stop string came)
    bool stopped() const noexcept { return m_stopped; }

private:
    std::vector<std::string> m_stops;
    std::string m_held;
    bool m_stopped = false;
};

struct GenerationParams {
    SamplingParams sampling;
    int64_t maxTokens = 0;           // new tokens at most; 0: until the context is full
    std::vector<std::string> stop;   // stop strings (not part of the output)
    std::vector<int32_t> stopTokens; // ids that end the generation (EOS, end of turn)
};

enum class FinishReason { Stop, Length, Cancelled };
// "stop", "length", "cancelled" (OpenAI's finish_reason names for the first two).
const char* finishReasonName(FinishReason reason) noexcept;

struct GenerationResult {
    std::string text; // everything the sink was given, in one piece
    FinishReason finish = FinishReason::Stop;
    int64_t promptTokens = 0;     // the prompt's length
    int64_t reusedTokens = 0;     // of them, found in the cache from the previous call
    int64_t completionTokens = 0; // ids produced (a stop token counts, as OpenAI counts it)
    double promptSeconds = 0;     // running the prompt's new tokens
    double generateSeconds = 0;   // producing the completion
};

// Receives the text as it is produced (whole UTF-8 characters); returning false stops the
// generation (a client that went away) with FinishReason::Cancelled.
using TextSink = std::function<bool(std::string_view text)>;
// Sees every produced id (after it is sampled, before it is run); for observers and tests.
using TokenObserver = std::function<void(int32_t id, int64_t produced)>;

class Generator {
public:
    // `contextTokens`: the KV cache's capacity (0: the model's maxSeq), allocated once here.
    Generator(const LlamaModel& model, const Tokenizer& tokenizer, int64_t contextTokens = 0);

    // Runs `prompt` (reusing the cached prefix it shares with the previous call) and produces
    // text until a stop token, a stop string, params.maxTokens (finish Length), a full context
    // (Length), the sink returning false or `cancel` (Cancelled; no exception: the partial result
    // is returned). Throws Error(InvalidArgument) when the prompt is empty or does not leave room
    // for one new token in the context, naming both lengths.
    GenerationResult generate(std::span<const int32_t> prompt, const GenerationParams& params,
                              const TextSink& sink = {}, const CancelToken* cancel = nullptr,
                              const TokenObserver& observer = {});

    // Forgets the cached tokens (the next call runs its whole prompt).
    void reset() noexcept;
    int64_t contextTokens() const noexcept { return m_cache.capacity; }
    const LlamaModel& model() const noexcept { return m_model; }

private:
    // Keeps the cached ids this prompt starts with (all but its last id at most); returns how many.
    size_t reusePrefix(std::span<const int32_t> prompt);
    // Runs prompt[from..] through the model (the logits of its last id in m_logits); false when
    // cancelled on the way (a chunk boundary). Resets the cache when the model throws.
    bool prefill(std::span<const int32_t> prompt, size_t from, const CancelToken* cancel);

    const LlamaModel& m_model;
    const Tokenizer& m_tokenizer;
    KvCache m_cache;
    std::vector<int32_t> m_cached; // the ids whose keys and values the cache holds (m_cache.pos)
    std::vector<float> m_logits;
};

// How prompts become ids for a model: plain text as `novaq generate` does it (BOS, then the
// text's ids), and rendered chat prompts, whose special-token texts ("<|im_start|>", "</s>")
// must become those tokens although most tokenizers encode text without parsing them.
class PromptEncoder {
public:
    PromptEncoder(const LlamaModel& model, const Tokenizer& tokenizer);

    // [BOS] + encode(text), as `novaq generate` does.
    std::vector<int32_t> encodeText(std::string_view text) const;
    // A rendered chat prompt: a leading BOS text becomes the BOS id (one BOS only), special-token
    // texts become their ids, the rest is encoded as text.
    std::vector<int32_t> encodeChat(std::string_view rendered, const ChatTemplate& chatTemplate) const;

    // EOS ids of the model and tokenizer, and the ids of single-token stop strings (a control
    // token's text never appears in the decoded output, so it has to stop by id).
    std::vector<int32_t> stopTokens(std::span<const std::string> stopStrings) const;
    int bos() const noexcept { return m_bos; }

private:
    const Tokenizer& m_tokenizer;
    int m_bos = -1;
    std::vector<int32_t> m_eos;
    std::vector<std::pair<std::string, int32_t>> m_specials; // longest first
};

} // namespace novaq
