#include "novaq/runtime/generator.h"

#include "novaq/io/error.h"
#include "novaq/runtime/session.h"
#include "novaq/text/chat_template.h"
#include "novaq/text/tokenizer.h"

#include <algorithm>
#include <chrono>

namespace novaq {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD, the decoders' mark for bad bytes
constexpr size_t kAnchorTokens = 4;                       // ids kept before the text being decoded
constexpr size_t kWindowTokens = 64;                      // re-anchor once the window is this long
constexpr int64_t kPromptChunk = kForwardBatchTokens;     // prompt ids per forward() call (llama.h)

// Bytes at the end of `text` that may still change: up to 3 U+FFFD (an unfinished UTF-8
// character made of byte tokens shows as one U+FFFD per byte until its last byte arrives).
size_t unsettledTail(std::string_view text)
{
    size_t tail = 0;
    for (int i = 0; i < 3 && text.size() >= tail + kReplacement.size() &&
                    text.substr(text.size() - tail - kReplacement.size(), kReplacement.size()) == kReplacement;
         ++i)
        tail += kReplacement.size();
    return tail;
}

// The shortest suffix of `ids` of at least kAnchorTokens ids whose text is not empty (so the
// first-piece rules of the decoders are spent inside the anchor, as in the whole decode).
std::vector<int32_t> anchorOf(const Tokenizer& tokenizer, std::span<const int32_t> ids)
{
    size_t k = std::min(kAnchorTokens, ids.size());
    while (k < ids.size() && tokenizer.decode(ids.subspan(ids.size() - k)).empty())
        ++k;
    return {ids.end() - static_cast<std::ptrdiff_t>(k), ids.end()};
}

double secondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

// ---- IncrementalDecoder ----

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, std::span<const int32_t> context)
    : m_tokenizer(tokenizer)
{
    anchorAt(anchorOf(tokenizer, context));
}

void IncrementalDecoder::anchorAt(std::vector<int32_t> ids)
{
    m_window = std::move(ids);
    m_anchorBytes = m_tokenizer.decode(m_window).size();
    m_emitted.clear();
}

std::string IncrementalDecoder::push(int32_t id)
{
    m_window.push_back(id);
    const std::string text = m_tokenizer.decode(m_window);
    const size_t done = m_anchorBytes + m_emitted.size();
    const size_t settled = text.size() - unsettledTail(text);
    std::string fresh = settled > done ? text.substr(done, settled - done) : std::string();
    m_emitted += fresh;
    if (settled == text.size() && m_window.size() >= kWindowTokens)
        anchorAt(anchorOf(m_tokenizer, m_window));
    return fresh;
}

std::string IncrementalDecoder::flush()
{
    const std::string text = m_tokenizer.decode(m_window);
    const size_t done = m_anchorBytes + m_emitted.size();
    std::string rest = text.size() > done ? text.substr(done) : std::string();
    m_emitted += rest;
    return rest;
}

// ---- StopScanner ----

StopScanner::StopScanner(std::vector<std::string> stops) : m_stops(std::move(stops))
{
    std::erase_if(m_stops, [](const std::string& s) { return s.empty(); });
}

std::string StopScanner::push(std::string_view text)
{
    if (m_stopped)
        return {};
    m_held += text;
    size_t first = std::string::npos;
    for (const std::string& s : m_stops)
        first = std::min(first, m_held.find(s));
    if (first != std::string::npos) {
        m_stopped = true;
        std::string out = m_held.substr(0, first);
        m_held.clear();
        return out;
    }
    // Hold the longest tail that is the start of a stop string.
    size_t hold = 0;
    for (const std::string& s : m_stops)
        for (size_t k = std::min(m_held.size(), s.size() - 1); k > hold; --k)
            if (std::string_view(m_held).ends_with(std::string_view(s).substr(0, k))) {
                hold = k;
                break;
            }
    std::string out = m_held.substr(0, m_held.size() - hold);
    m_held.erase(0, m_held.size() - hold);
    return out;
}

std::string StopScanner::flush()
{
    std::string out;
    out.swap(m_held);
    return m_stopped ? std::string() : out;
}

// ---- Generator ----

const char* finishReasonName(FinishReason reason) noexcept
{
    switch (reason) {
    case FinishReason::Stop:
        return "stop";
    case FinishReason::Length:
        return "length";
    case FinishReason::Cancelled:
        return "cancelled";
    }
    return "stop";
}

Generator::Generator(const LlamaModel& model, const Tokenizer& tokenizer, int64_t contextTokens)
    : m_model(model), m_tokenizer(tokenizer),
      m_cache(model.config, contextTokens > 0 ? std::min<int64_t>(contextTokens, model.config.maxSeq) : 0),
      m_logits(static_cast<size_t>(model.config.vocab))
{}

void Generator::reset() noexcept
{
    m_cache.pos = 0;
    m_cached.clear();
}

size_t Generator::reusePrefix(std::span<const int32_t> prompt)
{
    // The cached prefix this prompt shares; the last prompt id always runs again for its logits.
    size_t common = 0;
    while (common < m_cached.size() && common < prompt.size() && m_cached[common] == prompt[common])
        ++common;
    common = std::min(common, prompt.size() - 1);
    m_cache.pos = static_cast<int64_t>(common); // later rows are overwritten
    m_cached.resize(common);
    return common;
}

bool Generator::prefill(std::span<const int32_t> prompt, size_t from, const CancelToken* cancel)
{
    try {
        size_t at = from;
        while (at + 1 < prompt.size()) {
            if (cancel && cancel->cancelled())
                return false;
            const size_t n = std::min<size_t>(kPromptChunk, prompt.size() - 1 - at);
            forward(m_model, m_cache, prompt.subspan(at, n), nullptr);
            m_cached.insert(m_cached.end(), prompt.begin() + static_cast<std::ptrdiff_t>(at),
                            prompt.begin() + static_cast<std::ptrdiff_t>(at + n));
            at += n;
        }
        forward(m_model, m_cache, prompt.subspan(prompt.size() - 1), m_logits.data());
        m_cached.push_back(prompt.back());
    } catch (...) {
        reset();
        throw;
    }
    return true;
}

GenerationResult Generator::generate(std::span<const int32_t> prompt, const GenerationParams& params,
                                     const TextSink& sink, const CancelToken* cancel, const TokenObserver& observer)
{
    if (prompt.empty())
        throw Error(ErrorKind::InvalidArgument, "the prompt gives no tokens; give some text");
    const int64_t capacity = m_cache.capacity;
    if (static_cast<int64_t>(prompt.size()) >= capacity)
        throw Error(ErrorKind::InvalidArgument, "the prompt has " + std::to_string(prompt.size()) +
                                                    " tokens and the context holds " + std::to_string(capacity) +
                                                    "; shorten the prompt or the conversation");
    Sampler sampler(params.sampling); // validates the parameters before any work

    GenerationResult result;
    result.promptTokens = static_cast<int64_t>(prompt.size());
    const auto cancelled = [&] { return cancel && cancel->cancelled(); };

    const size_t common = reusePrefix(prompt);
    result.reusedTokens = static_cast<int64_t>(common);

    const auto started = std::chrono::steady_clock::now();
    const bool prefilled = prefill(prompt, common, cancel);
    result.promptSeconds = secondsSince(started);
    if (!prefilled) {
        result.finish = FinishReason::Cancelled;
        return result;
    }

    const auto generating = std::chrono::steady_clock::now();
    IncrementalDecoder decoder(m_tokenizer, prompt);
    StopScanner stops(params.stop);
    bool sinkFailed = false;
    const auto emit = [&](const std::string& text) {
        if (text.empty() || sinkFailed)
            return !sinkFailed;
        result.text += text;
        if (sink && !sink(text))
            sinkFailed = true;
        return !sinkFailed;
    };
    result.finish = FinishReason::Length;
    try {
        for (;;) {
            if (cancelled()) {
                result.finish = FinishReason::Cancelled;
                break;
            }
            const int32_t id = sampler.sample(m_logits);
            ++result.completionTokens;
            if (observer)
                observer(id, result.completionTokens);
            if (std::find(params.stopTokens.begin(), params.stopTokens.end(), id) != params.stopTokens.end()) {
                result.finish = FinishReason::Stop;
                break;
            }
            if (!emit(stops.push(decoder.push(id)))) {
                result.finish = FinishReason::Cancelled;
                break;
            }
            if (stops.stopped()) {
                result.finish = FinishReason::Stop;
                break;
            }
            if ((params.maxTokens > 0 && result.completionTokens >= params.maxTokens) || m_cache.pos >= capacity)
                break; // Length
            const int32_t one[1] = {id};
            forward(m_model, m_cache, one, m_logits.data());
            m_cached.push_back(id);
        }
    } catch (...) {
        reset();
        throw;
    }
    if (!sinkFailed && !stops.stopped()) {
        emit(stops.push(decoder.flush()));
        if (!stops.stopped())
            emit(stops.flush());
        else if (result.finish == FinishReason::Length)
            result.finish = FinishReason::Stop;
    }
    if (sinkFailed)
        result.finish = FinishReason::Cancelled;
    result.generateSeconds = secondsSince(generating);
    return result;
}

// ---- PromptEncoder ----

namespace {

bool isBytePiece(std::string_view p) { return p.size() == 6 && p.substr(0, 3) == "<0x" && p.back() == '>'; }

} // namespace

PromptEncoder::PromptEncoder(const LlamaModel& model, const Tokenizer& tokenizer)
    : m_tokenizer(tokenizer), m_bos(bosOf(model.config, tokenizer))
{
    for (const int id : {model.config.eos, static_cast<int>(tokenizer.eos())})
        if (id >= 0 && std::find(m_eos.begin(), m_eos.end(), id) == m_eos.end())
            m_eos.push_back(id);
    // Special tokens whose text the tokenizer does not turn back into them ("<s>", "<|im_start|>"
    // for SentencePiece and GGUF vocabularies; Hugging Face tokenizers cut their added tokens
    // out of the text themselves).
    for (int32_t id = 0; id < tokenizer.vocabSize(); ++id) {
        std::string p = tokenizer.piece(id);
        if (p.size() < 3 || p.front() != '<' || p.back() != '>' || isBytePiece(p) || p == "<unk>")
            continue;
        const std::vector<int32_t> ids = tokenizer.encode(p, false);
        if (ids.size() != 1 || ids.front() != id)
            m_specials.emplace_back(std::move(p), id);
    }
    std::stable_sort(m_specials.begin(), m_specials.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::vector<int32_t> PromptEncoder::encodeText(std::string_view text) const
{
    std::vector<int32_t> ids = m_tokenizer.encode(text, false);
    if (m_bos >= 0)
        ids.insert(ids.begin(), m_bos);
    return ids;
}

std::vector<int32_t> PromptEncoder::encodeChat(std::string_view rendered, const ChatTemplate& chatTemplate) const
{
    std::string_view rest = rendered;
    const std::string& bosText = chatTemplate.bosToken();
    if (!bosText.empty() && rest.starts_with(bosText))
        rest.remove_prefix(bosText.size());
    std::vector<int32_t> ids;
    while (!rest.empty()) {
        size_t at = std::string_view::npos;
        const std::pair<std::string, int32_t>* hit = nullptr;
        for (const auto& special : m_specials) { // longest first, so the earliest longest wins
            const size_t pos = rest.find(special.first);
            if (pos < at) {
                at = pos;
                hit = &special;
            }
        }
        const std::vector<int32_t> text = m_tokenizer.encode(rest.substr(0, at), false);
        ids.insert(ids.end(), text.begin(), text.end());
        if (!hit)
            break;
        ids.push_back(hit->second);
        rest.remove_prefix(at + hit->first.size());
    }
    const bool wantsBos = chatTemplate.isBuiltin() || !bosText.empty();
    if (m_bos >= 0 && wantsBos && (ids.empty() || ids.front() != m_bos))
        ids.insert(ids.begin(), m_bos);
    return ids;
}

std::vector<int32_t> PromptEncoder::stopTokens(std::span<const std::string> stopStrings) const
{
    std::vector<int32_t> ids = m_eos;
    if (stopStrings.empty())
        return ids;
    for (int32_t id = 0; id < m_tokenizer.vocabSize(); ++id) {
        const std::string p = m_tokenizer.piece(id);
        if (std::find(stopStrings.begin(), stopStrings.end(), p) != stopStrings.end() &&
            std::find(ids.begin(), ids.end(), id) == ids.end())
            ids.push_back(id);
    }
    return ids;
}

} // namespace novaq
